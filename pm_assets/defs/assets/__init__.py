"""Asset modules, one per stage: ingest, dbt, features, training, candidates, predictions and accuracy, monitoring, promotion, fleet scores."""
