"""The one table of an experiment's options: every ``runner run`` option and experiment-file key.

Each :class:`~runner.experiment._field.Field` is declared once: its parameter name, its
command-line flags, its kind (which is also how the experiment file checks its TOML value), its
key in the file (None: an option of one invocation, never of the experiment), its default and
its help. ``runner run``'s options are built from it (:mod:`runner.cli.run_options`) in this
order, the file's keys are derived from it (:data:`runner.experiment.KEYS`), and
:func:`~runner.experiment.experiment_from_params` reads what it names; a test holds the three
to the table. The table is kept in two parts, by stage: sending, then what comes after it.
"""

from __future__ import annotations

from typing import Final

from runner.experiment._field import FRESH_PROCESS_FROM, Field
from runner.experiment._fields_after import AFTER_SENDING
from runner.experiment._fields_sending import SENDING

#: Every option, in the order ``runner run --help`` lists them.
FIELDS: Final[tuple[Field, ...]] = SENDING + AFTER_SENDING

#: Every field by parameter name.
BY_PARAM: Final = {field.param: field for field in FIELDS}

__all__ = ["BY_PARAM", "FIELDS", "FRESH_PROCESS_FROM", "Field"]
