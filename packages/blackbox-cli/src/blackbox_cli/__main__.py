"""``python -m blackbox_cli`` is ``blackbox``."""

from __future__ import annotations

from blackbox_cli._main import main

raise SystemExit(main())
