"""Where new candidates come from, behind one protocol (``base.Proposer``): ``mutation``
(reflective mutation from one module's own trace and feedback, written by ``reflective``) and
``merge`` (two frontier candidates combined module by module)."""
