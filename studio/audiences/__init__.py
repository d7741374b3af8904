"""Audience export: a saved segment's consented members delivered to a destination.

``audience`` builds the rows, ``diff`` compares them with the last confirmed delivery,
``destinations`` writes them, ``outbox`` records every member's delivery and ``runner``
ties the steps into one audited, resumable run.
"""
