"""Request handlers, one module per resource; they translate domain outcomes into HTTP."""
