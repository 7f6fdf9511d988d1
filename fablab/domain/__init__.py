"""Pure rules: booking rules and availability, policies, fair share and allocation, sessionizing machine
reports into usage, usage linking, maintenance counters, design metadata and file safety, the fairness
review (`fairness/`). Nothing here imports flask, sqlalchemy, paho, serial or any other fablab package,
and nothing reads the clock: `now` and the data come in as arguments, results go out as plain values.
Refusals are data (a code and its parameters); the sentence is made at the edge. Checked by import-linter
(pyproject.toml) and mypy --strict; tested directly in tests/domain without app or database."""
