"""ctypes declarations for libbpf.so.1: the one place that names C functions.

Every other module of bpfsight.bpf calls through `lib()`; nothing outside this package imports
ctypes. libbpf 1.x reports errors as negative errno (int returns) or NULL with errno set
(pointer returns); `check_int`/`check_ptr` turn both into OSError.
"""
import _thread
import ctypes
import errno
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, c_bool, c_char_p, c_int, c_long, c_size_t, c_uint,
                    c_uint32, c_uint64, c_void_p)


LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2


class BtfType(ctypes.Structure):
    _fields_ = [("name_off", c_uint32), ("info", c_uint32), ("size_or_type", c_uint32)]


class BtfVarSecinfo(ctypes.Structure):
    _fields_ = [("type", c_uint32), ("offset", c_uint32), ("size", c_uint32)]


class UprobeOpts(ctypes.Structure):
    _fields_ = [("sz", c_size_t), ("ref_ctr_offset", c_size_t), ("bpf_cookie", c_uint64),
                ("retprobe", c_bool), ("func_name", c_char_p)]


class TracepointOpts(ctypes.Structure):  # struct bpf_tracepoint_opts
    _fields_ = [("sz", c_size_t), ("bpf_cookie", c_uint64)]


class TcHook(ctypes.Structure):  # struct bpf_tc_hook
    _fields_ = [("sz", c_size_t), ("ifindex", c_int), ("attach_point", c_uint),
                ("parent", c_uint32)]


class TcOpts(ctypes.Structure):  # struct bpf_tc_opts
    _fields_ = [("sz", c_size_t), ("prog_fd", c_int), ("flags", c_uint32),
                ("prog_id", c_uint32), ("handle", c_uint32), ("priority", c_uint32)]


class MapBatchOpts(ctypes.Structure):
    _fields_ = [("sz", c_size_t), ("elem_flags", c_uint64), ("flags", c_uint64)]


# (name, restype, argtypes)
_SIGNATURES = [
    ("libbpf_set_print", c_void_p, [c_void_p]),
    ("libbpf_num_possible_cpus", c_int, []),
    ("libbpf_probe_bpf_prog_type", c_int, [c_int, c_void_p]),
    ("libbpf_probe_bpf_map_type", c_int, [c_int, c_void_p]),
    ("bpf_object__open_file", c_void_p, [c_char_p, c_void_p]),
    ("bpf_object__open_mem", c_void_p, [c_void_p, c_size_t, c_void_p]),
    ("bpf_object__load", c_int, [c_void_p]),
    ("bpf_object__close", None, [c_void_p]),
    ("bpf_object__name", c_char_p, [c_void_p]),
    ("bpf_object__btf", c_void_p, [c_void_p]),
    ("bpf_object__next_program", c_void_p, [c_void_p, c_void_p]),
    ("bpf_object__next_map", c_void_p, [c_void_p, c_void_p]),
    ("bpf_program__name", c_char_p, [c_void_p]),
    ("bpf_program__section_name", c_char_p, [c_void_p]),
    ("bpf_program__set_autoload", c_int, [c_void_p, c_bool]),
    ("bpf_program__autoload", c_bool, [c_void_p]),
    ("bpf_program__fd", c_int, [c_void_p]),
    ("bpf_program__attach", c_void_p, [c_void_p]),
    ("bpf_program__attach_tracepoint", c_void_p, [c_void_p, c_char_p, c_char_p]),
    ("bpf_program__attach_raw_tracepoint", c_void_p, [c_void_p, c_char_p]),
    ("bpf_program__attach_trace", c_void_p, [c_void_p]),
    ("bpf_program__attach_uprobe_opts", c_void_p,
     [c_void_p, c_int, c_char_p, c_size_t, POINTER(UprobeOpts)]),
    ("bpf_program__attach_tracepoint_opts", c_void_p,
     [c_void_p, c_char_p, c_char_p, POINTER(TracepointOpts)]),
    ("bpf_program__attach_perf_event", c_void_p, [c_void_p, c_int]),
    ("bpf_program__attach_xdp", c_void_p, [c_void_p, c_int]),
    ("bpf_program__attach_iter", c_void_p, [c_void_p, c_void_p]),
    ("bpf_iter_create", c_int, [c_int]),
    ("bpf_link__fd", c_int, [c_void_p]),
    ("bpf_link_create", c_int, [c_int, c_int, c_int, c_void_p]),
    ("bpf_tc_hook_create", c_int, [c_void_p]),
    ("bpf_tc_hook_destroy", c_int, [c_void_p]),
    ("bpf_tc_attach", c_int, [c_void_p, c_void_p]),
    ("bpf_tc_detach", c_int, [c_void_p, c_void_p]),
    ("bpf_link__destroy", c_int, [c_void_p]),
    ("bpf_map__name", c_char_p, [c_void_p]),
    ("bpf_map__fd", c_int, [c_void_p]),
    ("bpf_map__type", c_int, [c_void_p]),
    ("bpf_map__key_size", c_uint32, [c_void_p]),
    ("bpf_map__value_size", c_uint32, [c_void_p]),
    ("bpf_map__max_entries", c_uint32, [c_void_p]),
    ("bpf_map__set_max_entries", c_int, [c_void_p, c_uint32]),
    ("bpf_map__set_type", c_int, [c_void_p, c_int]),
    ("bpf_map__initial_value", c_void_p, [c_void_p, POINTER(c_size_t)]),
    ("bpf_map__btf_key_type_id", c_uint32, [c_void_p]),
    ("bpf_map__btf_value_type_id", c_uint32, [c_void_p]),
    ("btf__find_by_name_kind", c_int, [c_void_p, c_char_p, c_uint32]),
    ("btf__type_by_id", POINTER(BtfType), [c_void_p, c_uint32]),
    ("btf__name_by_offset", c_char_p, [c_void_p, c_uint32]),
    ("btf__load_vmlinux_btf", c_void_p, []),
    ("btf__free", None, [c_void_p]),
    ("bpf_map_create", c_int, [c_int, c_char_p, c_uint32, c_uint32, c_uint32, c_void_p]),
    ("bpf_map_lookup_elem", c_int, [c_int, c_void_p, c_void_p]),
    ("bpf_map_update_elem", c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    ("bpf_map_delete_elem", c_int, [c_int, c_void_p]),
    ("bpf_map_get_next_key", c_int, [c_int, c_void_p, c_void_p]),
    ("bpf_map_lookup_batch", c_int,
     [c_int, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_uint32), POINTER(MapBatchOpts)]),
    ("bpf_map_lookup_and_delete_batch", c_int,
     [c_int, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_uint32), POINTER(MapBatchOpts)]),
    ("bpf_prog_load", c_int, [c_int, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p]),
    ("bpf_enable_stats", c_int, [c_int]),
    ("bpf_raw_tracepoint_open", c_int, [c_char_p, c_int]),
    ("bpf_prog_get_next_id", c_int, [c_uint32, POINTER(c_uint32)]),
    ("bpf_prog_get_fd_by_id", c_int, [c_uint32]),
    ("bpf_map_get_next_id", c_int, [c_uint32, POINTER(c_uint32)]),
    ("bpf_link_get_next_id", c_int, [c_uint32, POINTER(c_uint32)]),
    ("bpf_link_get_fd_by_id", c_int, [c_uint32]),
    ("bpf_obj_get_info_by_fd", c_int, [c_int, c_void_p, POINTER(c_uint32)]),
]

_lib = None
_libc = None
PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
_print_cb = None
# thread id -> list: while a load runs in that thread, libbpf's messages are also appended to
# its list (the verifier log on a failed load). Per thread: objects may load in parallel.
_captures = {}


def start_capture():
    lines = _captures[_thread.get_ident()] = []
    return lines


def stop_capture():
    _captures.pop(_thread.get_ident(), None)


_log = None


def _logger():
    """The "bpfsight.libbpf" logger (silent as a library; the CLI shows it with -v), once
    something has imported logging: until then nothing can be configured to listen, and not
    importing it saves ~3 ms of every start."""
    global _log
    if _log is None and "logging" in sys.modules:
        logging = sys.modules["logging"]
        _log = logging.getLogger("bpfsight.libbpf")
        _log.addHandler(logging.NullHandler())
    return _log


def _on_libbpf_print(level, fmt, va_list):
    log = _logger()
    capture = _captures.get(_thread.get_ident())
    if level == LIBBPF_DEBUG and (log is None or not log.isEnabledFor(10)):  # logging.DEBUG
        # ~250 debug lines per load that nobody reads (load errors are warnings); formatting
        # each into a fresh 1 MiB buffer cost the exporter ~60 ms of its start (13 objects)
        return 0
    if log is None and capture is None:
        return 0
    buf = ctypes.create_string_buffer(1 << 20)  # a verifier log comes in one message
    _libc.vsnprintf(buf, len(buf), fmt, c_void_p(va_list))
    text = buf.value.decode(errors="replace").rstrip("\n")
    if capture is not None:
        capture.append(text)
    if log is not None:
        logging = sys.modules["logging"]
        log.log({LIBBPF_WARN: logging.WARNING, LIBBPF_INFO: logging.INFO}.get(
            level, logging.DEBUG), "%s", text)
    return 0


def lib():
    """The loaded libbpf with every signature declared, libbpf's log routed to `logging`."""
    global _lib, _libc, _print_cb
    if _lib is not None:
        return _lib
    from .errors import NotSupportedError
    name = os.environ.get("BPFSIGHT_LIBBPF", "libbpf.so.1")
    try:
        handle = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise NotSupportedError("libbpf", f"cannot load {name} ({exc}); install libbpf1 "
                                "(apt-get install libbpf1) or set BPFSIGHT_LIBBPF") from None
    for fname, restype, argtypes in _SIGNATURES:
        fn = getattr(handle, fname, None)
        if fn is None:  # an older libbpf: the feature using it reports NotSupported
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)  # find_library would spawn ldconfig
    _libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
    _libc.syscall.restype = c_long
    _print_cb = PRINT_FN(_on_libbpf_print)
    handle.libbpf_set_print(ctypes.cast(_print_cb, c_void_p))
    _lib = handle
    return _lib


def libc():
    lib()
    return _libc


def check_int(ret, what):
    """libbpf int return: negative errno on failure."""
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def check_ptr(ptr, what):
    """libbpf pointer return: NULL with errno set on failure."""
    if not ptr:
        err = ctypes.get_errno() or errno.EINVAL
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ptr


def syscall(number, *args):
    """A raw syscall (perf_event_open has no libc wrapper); returns (result, errno)."""
    c = libc()
    ctypes.set_errno(0)
    ret = c.syscall(c_long(number), *args)
    return ret, ctypes.get_errno()


__all__ = ["lib", "libc", "check_int", "check_ptr", "syscall", "BtfType", "BtfVarSecinfo",
           "UprobeOpts", "MapBatchOpts", "c_uint", "c_uint32", "c_uint64", "c_int", "c_void_p",
           "c_char_p", "c_size_t", "POINTER"]
