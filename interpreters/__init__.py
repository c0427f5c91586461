"""Interpreters over the IR: one module each (eval; later ad, batching, lowering).

Internal to ftrans: imports `ir`, never `ftrans`.
"""
