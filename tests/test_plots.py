"""The text tables and verdicts the chapters print."""
import pytest

from hintlearn_mini.plots import accuracy_table


def test_accuracy_table_keeps_columns_for_rows_with_fewer_seeds():
    table = accuracy_table({"alone": [30.0, 32.0, 34.0], "KD": [40.0, 42.0]}, seeds=[0, 1, 2])
    head, _, alone, kd = table.splitlines()
    assert kd.split()[:4] == ["KD", "40.00", "42.00", "–"]
    assert kd.split()[4:] == ["41.00", "±", "1.41", "+9.00"]
    assert len(kd) == len(alone) == len(head)
    with pytest.raises(ValueError, match="more values than the 2 seeds"):
        accuracy_table({"alone": [1.0, 2.0, 3.0]}, seeds=[0, 1])
