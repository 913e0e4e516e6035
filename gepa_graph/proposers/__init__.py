"""Where new candidates come from: ``reflective`` (a mutation from one module's own trace and
feedback) and ``merge`` (two frontier candidates combined module by module)."""
