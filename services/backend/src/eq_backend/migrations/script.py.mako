"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}
# REQUIRED, say which and why: "expand" when the release before this one still runs on the
# schema this revision produces (a new nullable column, table or index), "contract" when it
# does not (a dropped or renamed column, a new NOT NULL without default). A rollback goes
# back over expand revisions only; over a contract it needs `inv rollback --downgrade`.
schema_change: str = "FILL IN: expand or contract"


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
