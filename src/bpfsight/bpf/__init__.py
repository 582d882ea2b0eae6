"""bpfsight's BPF runtime: the only package that talks to libbpf (through ctypes).

    spec = ObjectSpec.open("runqlat")      # opened, editable
    spec.set_global("targ_ms", True)
    spec.programs["runqlat_wakeup"].autoload = False   # tools pick programs (tool.select_hooks)
    with spec.load() as obj:               # loaded; closing detaches everything
        obj.attach_all()
        hists = obj.map("hists")           # keys and values typed by the object's BTF
        keys, values = hists.read_all()    # numpy arrays
"""
from .errors import (AttachError, BPFError, LoadError, MissingTracepointError, NoBTFError,
                     NotSupportedError, PermissionDenied, VerifierError)
from .object import Object, ObjectSpec, check_privileges, object_path

__all__ = ["ObjectSpec", "Object", "object_path", "check_privileges", "BPFError",
           "NotSupportedError", "PermissionDenied", "NoBTFError", "MissingTracepointError",
           "VerifierError", "LoadError", "AttachError"]
