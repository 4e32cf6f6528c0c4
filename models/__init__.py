"""Model code with no Prefect in it: features, PLS, GP, LSTM, registry."""
