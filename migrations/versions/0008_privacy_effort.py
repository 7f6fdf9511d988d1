"""Privacy of request-window draws and shared effort that cannot be gamed.

- `window_participants`: each member's label in a window's draw is a random token stored here (unique
  in the window), no longer HMAC(revealed seed, member id), which anyone could recompute for ids 1..N.
- `request_windows.label_scheme`: "random" for windows drawn with those labels; "member-hmac" for
  windows whose draw already ran under the old labels.
- `effort_tasks.completed_by_id / confirmed_at / confirmed_by_id`: a completed task's credits count only
  once someone other than its claimants confirmed it.

What happens to windows drawn before this migration (honestly): their published order was derived from
the old labels (the lottery ticket is HMAC(seed, round, label)), so they cannot be re-labelled: new labels
would give a different order and the draw would no longer verify. Their stored outcome stands and their
trace is kept unchanged, so staff (and the fairness review) can still re-run and verify it; but as the old
labels are reversible, such a trace is no longer published to members. Each participant gets a fresh
random label here, which the results page shows instead of the old one; the page says why the trace is
withheld. Anyone who downloaded an old trace before could map it already; that cannot be undone.
Windows still open (not drawn) simply draw with the new labels at their close.

Existing completed tasks are marked confirmed (by nobody, at their completion time): they were credited
under the old rules, and taking hours back from members after the fact would be the worse surprise.

Revision ID: 0008_privacy_effort
Revises: 0007_accounts
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008_privacy_effort"
down_revision = "0007_accounts"
branch_labels = None
depends_on = None

# The same alphabet and length as fablab.services.windows.new_label (migrations do not import app code).
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_LENGTH = 8


def _label(taken: set[str]) -> str:
    while True:
        label = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        if label not in taken:
            taken.add(label)
            return label


def upgrade():
    op.create_table(
        "window_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_window_participants_member_id_members"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["window_id"], ["request_windows.id"],
                                name=op.f("fk_window_participants_window_id_request_windows"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_window_participants")),
        sa.UniqueConstraint("window_id", "label", name="uq_window_participants_label"),
        sa.UniqueConstraint("window_id", "member_id", name="uq_window_participants_member"),
    )
    op.create_index(op.f("ix_window_participants_member_id"), "window_participants", ["member_id"], unique=False)
    with op.batch_alter_table("request_windows") as batch_op:
        batch_op.add_column(sa.Column("label_scheme", sa.String(length=12), server_default="random", nullable=False))
    with op.batch_alter_table("effort_tasks") as batch_op:
        batch_op.add_column(sa.Column("completed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_effort_tasks_completed_by_id_members"), "members",
                                    ["completed_by_id"], ["id"], ondelete="SET NULL")
        batch_op.create_foreign_key(batch_op.f("fk_effort_tasks_confirmed_by_id_members"), "members",
                                    ["confirmed_by_id"], ["id"], ondelete="SET NULL")

    bind = op.get_bind()
    windows = sa.table("request_windows", sa.column("id", sa.Integer), sa.column("revealed_seed", sa.String),
                       sa.column("label_scheme", sa.String), sa.column("created_at", sa.DateTime(timezone=True)))
    requests = sa.table("slot_requests", sa.column("window_id", sa.Integer), sa.column("member_id", sa.Integer))
    participants = sa.table("window_participants", sa.column("window_id", sa.Integer),
                            sa.column("member_id", sa.Integer), sa.column("label", sa.String),
                            sa.column("created_at", sa.DateTime(timezone=True)))
    # Drawn = seed revealed (a JSON trace column may hold JSON null, which IS NOT NULL would count).
    bind.execute(windows.update().where(windows.c.revealed_seed.is_not(None)).values(label_scheme="member-hmac"))
    created = dict(bind.execute(sa.select(windows.c.id, windows.c.created_at)).all())
    by_window: dict[int, list[int]] = {}
    for wid, mid in bind.execute(sa.select(requests.c.window_id, requests.c.member_id).distinct()).all():
        by_window.setdefault(wid, []).append(mid)
    rows = []
    for wid, members in by_window.items():
        taken: set[str] = set()
        rows += [{"window_id": wid, "member_id": mid, "label": _label(taken), "created_at": created[wid]}
                 for mid in sorted(members)]
    if rows:
        bind.execute(participants.insert(), rows)

    tasks = sa.table("effort_tasks", sa.column("completed_at", sa.DateTime(timezone=True)),
                     sa.column("confirmed_at", sa.DateTime(timezone=True)))
    bind.execute(tasks.update().where(tasks.c.completed_at.is_not(None)).values(confirmed_at=tasks.c.completed_at))


def downgrade():
    # Going back loses the stored labels (every trace still re-runs; the old code just cannot tell a member
    # which random label was theirs) and the confirmations (every credit counts again).
    with op.batch_alter_table("effort_tasks") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_effort_tasks_confirmed_by_id_members"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_effort_tasks_completed_by_id_members"), type_="foreignkey")
        batch_op.drop_column("confirmed_by_id")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("completed_by_id")
    with op.batch_alter_table("request_windows") as batch_op:
        batch_op.drop_column("label_scheme")
    op.drop_index(op.f("ix_window_participants_member_id"), table_name="window_participants")
    op.drop_table("window_participants")
