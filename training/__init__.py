"""Model training, offline evaluation against baselines, and the MLflow registry.

Start from :mod:`training.api` (what the ``nba train / evaluate / recommend``
commands call). Every model goes through one template,
:mod:`training.pipeline` (evaluate, fit, plot, log, register), filled per
model in :mod:`training.families`. The models: :mod:`training.recommender`
(the hybrid LightFM recommender; :mod:`training.baselines` the models it is
compared with in :mod:`training.comparison`), :mod:`training.propensity`,
:mod:`training.offers` and :mod:`training.send_time` (the decision models,
learning from the examples of :mod:`training.examples`). :mod:`training.registry`
is the MLflow tracking store and the ``champion`` alias.
"""
