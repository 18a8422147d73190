"""Model training, offline evaluation against baselines, and the MLflow registry.

Start from :mod:`training.api` (what the ``nba train / evaluate / recommend``
commands call); :mod:`training.recommender` is the hybrid LightFM model,
:mod:`training.baselines` the models it is compared with, and
:mod:`training.registry` the MLflow tracking store and the ``champion`` alias.
"""
