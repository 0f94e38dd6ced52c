"""The package version, in a module of its own: run folders record it, and a stage importing it from
`vulnsteer/__init__.py` would point back up at the package that sits on top of every stage."""

__version__ = "0.1.0"
