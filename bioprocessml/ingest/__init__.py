"""Ingest stage: watch incoming/, sniff and validate a file, quarantine or accept it, version
accepted data with DVC and keep the catalogue of every arrival."""
