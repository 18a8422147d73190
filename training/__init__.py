"""Training: models that score products, offers, channels and send times; evaluation
against baselines; MLflow tracking and registry."""
