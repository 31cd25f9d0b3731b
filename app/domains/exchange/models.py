"""Exchange owns no table: exports read, and imports write, the other domains' tables.

Its own state is nothing but a transaction-scoped advisory lock per collection while an
import writes (`import:<collection>`, in `service.py`).
"""
