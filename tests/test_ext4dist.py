"""ext4dist is fsdist -t ext4 (tests/test_fsdist.py has the workload and its checks)."""
import pytest

from test_fsdist import counts_and_total_time_of_known_operations
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf


def test_counts_and_total_time_of_known_operations(tmp_path):
    counts_and_total_time_of_known_operations(tmp_path, ["ext4dist"])


def test_other_types_go_to_fsdist():
    assert "fsdist -t xfs" in assert_usage_error("ext4dist", "-t", "xfs")
