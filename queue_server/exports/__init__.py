"""Exports for managers: daily totals (CSV, XLSX, PDF report), the late-dossier list and apology slips.

`jobs` is what the HTTP API and the command line call; the other modules are pure (figures or
dossiers in, rows or file bytes out) and know nothing of Flask or SQL.
"""
