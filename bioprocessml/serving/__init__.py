"""Serving stage: the request contract, the deployed model set, rollouts (decisions, state,
runner), the prediction log and the service's metrics. `service.py` is the door onto it."""
