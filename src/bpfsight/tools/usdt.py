"""usdt: list the USDT (user statically defined tracing) probes of a binary or of every file a
process maps, like BCC's `tplist -l LIB` / `tplist -p PID`, read from the ELF notes."""
import fnmatch

from ..binaries import resolve_binary
from ..errors import UsageError
from ..target import pid_arg, resolve_pid
from ..tool import Tool, add_output_args, output_for
from ..usdt import probes_of_pid, read_probes

ROW = "  %-16s %-28s %-18s %-18s %s"


class Usdt(Tool):
    name = "usdt"
    summary = "list a binary's USDT probes"
    description = ("List USDT probes (provider, name, location, semaphore, argument spec) from a "
                   "binary's .note.stapsdt ELF notes. FILTER is a glob on PROVIDER:NAME or NAME.")

    def add_arguments(self, p):
        p.add_argument("-l", "--lib", metavar="LIB",
                       help="the binary or library: a path, or a name like c or python3.11")
        p.add_argument("-p", "--pid", type=pid_arg,
                       help="every file this process maps (or where to find -l LIB)")
        add_output_args(p)
        p.add_argument("filter", nargs="?", default="*", help="glob on PROVIDER:NAME or NAME")

    def run(self, args):
        if not args.lib and not args.pid:
            raise UsageError("give -l LIB (a binary or library) or -p PID")
        pid = resolve_pid(args.pid)
        if args.lib:
            probes = read_probes(resolve_binary(args.lib, pid))
        else:
            probes = probes_of_pid(pid)
        probes = [p for p in probes if fnmatch.fnmatch(f"{p.provider}:{p.name}", args.filter)
                  or fnmatch.fnmatch(p.name, args.filter)]
        self._render(output_for(args), probes)
        return 0

    def _render(self, out, probes):
        binary = None
        for p in probes:
            if p.binary != binary:
                binary = p.binary
                out.text(binary)
                out.text(ROW % ("PROVIDER", "NAME", "LOCATION", "SEMAPHORE", "ARGS"))
            out.text(ROW % (p.provider, p.name, hex(p.location),
                            hex(p.semaphore) if p.semaphore else "-", p.args))
            out.record({"tool": self.name, **p.to_dict()})
