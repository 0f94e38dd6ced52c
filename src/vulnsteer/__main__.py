"""`python -m vulnsteer` = the `vulnsteer` command (works before the console script is on PATH)."""

from vulnsteer.cli import app

app(prog_name="vulnsteer")
