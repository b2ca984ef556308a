"""CRD's memory bank against an independent reference on the same inputs: which bank each
network's embeddings update, what each embedding is scored against, and Z."""
import copy

import pytest
import torch
import torch.nn.functional as F

from hintlearn_mini.methods.crd import ContrastMemory


def _reference_step(student_bank, teacher_bank, s, t, index, idx, tau, momentum):
    """One step written out: each network's embedding scored against the *other* network's
    bank (before the update), then each bank moved towards its own network's embeddings
    and renormalised. Returns (teacher-anchored scores, student-anchored scores, banks)."""
    teacher_scores = torch.exp((student_bank[idx] * t[:, None, :]).sum(-1) / tau)  # (B, K+1)
    student_scores = torch.exp((teacher_bank[idx] * s[:, None, :]).sum(-1) / tau)
    student_bank, teacher_bank = student_bank.clone(), teacher_bank.clone()
    student_bank[index] = F.normalize(momentum * student_bank[index] + (1 - momentum) * s, dim=1)
    teacher_bank[index] = F.normalize(momentum * teacher_bank[index] + (1 - momentum) * t, dim=1)
    return teacher_scores, student_scores, student_bank, teacher_bank


@pytest.mark.parametrize("n_data, k", [(20, 5), (100, 3)], ids=["whole bank", "gathered rows"])
def test_the_memory_bank_scores_and_updates_as_crd_defines_it(n_data, k):
    torch.manual_seed(0)
    dim, tau, momentum = 6, 0.07, 0.3  # not 0.5, where m and 1 − m are equal
    memory = ContrastMemory(dim, n_data, k, tau, momentum)
    assert memory.use_full_bank() == (n_data <= 8 * (k + 1))
    student_bank, teacher_bank = memory.student_bank.clone(), memory.teacher_bank.clone()
    z = None
    for step in range(2):  # Z is set on the first batch, then frozen
        s, t = F.normalize(torch.randn(4, dim), dim=1), F.normalize(torch.randn(4, dim), dim=1)
        index = torch.tensor([1, 3, 5, 7]) + step
        idx = torch.cat([index[:, None], torch.randint(n_data, (4, k))], dim=1)  # positive first
        teacher_scores, student_scores, student_bank, teacher_bank = _reference_step(
            student_bank, teacher_bank, s, t, index, idx, tau, momentum)
        if z is None:
            z = (teacher_scores.mean() * n_data, student_scores.mean() * n_data)
        p_t, p_s = memory(s, t, index, idx)
        torch.testing.assert_close(p_t.squeeze(2), teacher_scores / z[0])
        torch.testing.assert_close(p_s.squeeze(2), student_scores / z[1])
        torch.testing.assert_close(memory.z, torch.stack(z))
        torch.testing.assert_close(memory.student_bank, student_bank)
        torch.testing.assert_close(memory.teacher_bank, teacher_bank)


def test_the_banks_scores_are_float32_under_bfloat16_autocast():
    torch.manual_seed(0)
    memory = ContrastMemory(8, 20, 5)
    s, t = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    index = torch.arange(4)
    idx = torch.cat([index[:, None], torch.randint(20, (4, 5))], dim=1)
    reference = copy.deepcopy(memory)(s, t, index, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = memory(s.bfloat16(), t.bfloat16(), index, idx)
    assert all(p.dtype == torch.float32 for p in scores) and memory.z.dtype == torch.float32
    assert memory.student_bank.dtype == memory.teacher_bank.dtype == torch.float32
    for ours, exact in zip(scores, reference):  # only the embeddings' rounding to bf16 differs
        torch.testing.assert_close(ours, exact, rtol=0.05, atol=0)


WORKER = """
import sys, torch, torch.distributed as dist
from hintlearn_mini.methods.crd import ContrastMemory
rank, folder = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
steps = torch.load(f"{folder}/steps.pt")
torch.manual_seed(0)
memory = ContrastMemory(6, 40, 5, 0.07, 0.3)
for s, t, index, idx in steps:
    mine = torch.tensor_split(torch.arange(len(index)), 2)[rank]  # this process's shard of the batch
    memory(s[mine], t[mine], index[mine], idx[mine])
torch.save({"student": memory.student_bank, "teacher": memory.teacher_bank, "z": memory.z},
           f"{folder}/bank{rank}.pt")
dist.barrier()  # leave together: an early exit can cut the other's last message
dist.destroy_process_group()
"""


def test_two_processes_keep_one_bank_equal_to_the_one_process_bank(tmp_path):
    import subprocess
    import sys

    g = torch.Generator().manual_seed(1)
    steps = []
    for step in range(3):  # global batches of 7: shards of 4 and 3
        s, t = F.normalize(torch.randn(7, 6, generator=g), dim=1), F.normalize(torch.randn(7, 6, generator=g), dim=1)
        index = torch.randperm(40, generator=g)[:7]
        idx = torch.cat([index[:, None], torch.randint(40, (7, 5), generator=g)], dim=1)
        steps.append((s, t, index, idx))
    torch.save(steps, tmp_path / "steps.pt")
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(rank), str(tmp_path)]) for rank in (0, 1)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    torch.manual_seed(0)
    one = ContrastMemory(6, 40, 5, 0.07, 0.3)
    initial = one.student_bank.clone()
    for s, t, index, idx in steps:
        one(s, t, index, idx)
    banks = [torch.load(tmp_path / f"bank{rank}.pt") for rank in (0, 1)]
    for name, reference in (("student", one.student_bank), ("teacher", one.teacher_bank), ("z", one.z)):
        assert torch.equal(banks[0][name], banks[1][name]), f"the processes' {name} banks drifted apart"
        torch.testing.assert_close(banks[0][name], reference, rtol=1e-6, atol=1e-7,
                                   msg=f"the two-process {name} is not the one-process {name}")
    assert not torch.equal(one.student_bank, initial)  # the steps moved it
