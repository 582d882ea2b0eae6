"""`bpfsight diagnose`: thread-state accounting + the USE method, and a ranked verdict."""
