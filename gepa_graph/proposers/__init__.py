"""Where new candidates come from, behind one ask/tell protocol (``base.Proposer``): ``mutation``
(reflective mutation from one module's own trace and feedback, written by ``reflective``) and
``merge`` (two frontier candidates combined module by module). Proposers read the search through
``base.ProposerView`` and return data; the engine runs, settles and reports their work."""
