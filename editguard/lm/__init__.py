"""Language-model helpers that editing and scoring share: device, tokens, forward, corpus text."""
