"""Backtest: replay historical batch files in arrival order through the chain's own functions
(validation, drift monitor, retrain policy, training and gate, rollout decisions, and a client
asking for predictions while each batch runs), in one process, without servers, in a temporary
state folder; then score every automatic decision against what really happened."""
