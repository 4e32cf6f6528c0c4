"""Operations: start and stop the embedded stack, the demo campaign, its client and timeline."""
