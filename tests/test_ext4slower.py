"""ext4slower is fsslower -t ext4: tests/test_fsslower.py runs both on the same workload."""
import pytest

from test_fsslower import test_only_the_chosen_file_system as _only_ext4

pytestmark = pytest.mark.bpf


def test_ext4_operations_only(tmp_path):
    _only_ext4(["ext4slower"], tmp_path)
