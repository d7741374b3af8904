"""The ML code: point-in-time features, labels, training, evaluation, registry, scoring.

Trained artifacts live under ``STUDIO_HOME/artifacts``, never in git.
"""
