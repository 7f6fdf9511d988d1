from fablab.domain.markdown_safe import render_markdown


def test_commonmark_basics():
    html = render_markdown("# Title\n\nSome *em* and **strong** and `code`.\n\n- a\n- b\n")
    assert "<h1>Title</h1>" in html
    assert "<em>em</em>" in html and "<strong>strong</strong>" in html and "<code>code</code>" in html
    assert "<li>a</li>" in html


def test_links_get_nofollow_noopener():
    html = render_markdown("[docs](https://example.org/docs)")
    assert 'href="https://example.org/docs"' in html
    assert "nofollow" in html and "noopener" in html


def test_raw_html_is_not_passed_through():
    html = render_markdown('<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n<b onclick=x()>b</b>')
    assert "<script" not in html and "<img" not in html and "<b " not in html
    assert "&lt;script&gt;" in html and "&lt;b onclick" in html  # shown as text, harmless


def test_javascript_urls_are_dropped():
    for src in ["[x](javascript:alert(1))", "[x](JAVASCRIPT:alert(1))", "![i](javascript:alert(1))",
                "<javascript:alert(1)>", "[x](data:text/html;base64,PHNjcmlwdD4=)", "[x](vbscript:msgbox)"]:
        html = render_markdown(src)
        assert 'href="javascript' not in html.lower() and 'src="javascript' not in html.lower(), src
        assert 'href="data:' not in html and 'href="vbscript' not in html, src


def test_tables_and_images():
    html = render_markdown("| part | qty |\n|---|---:|\n| M3 screw | 4 |\n\n![photo](/designs/1/photo.jpg)")
    assert "<table>" in html and "<td" in html and "M3 screw" in html
    assert '<img src="/designs/1/photo.jpg" alt="photo">' in html


def test_empty_and_none():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""  # type: ignore[arg-type]
