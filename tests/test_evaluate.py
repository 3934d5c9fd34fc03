"""Tests of `scae_eval` that do not fit a notebook: a tiny run trained for a few steps by `scae_train`, then evaluated
end to end in a subprocess (scores, JSON, figures), and the command's one-line errors.

The metrics themselves (LIN-MATCH on known permutations and on noise, the Hungarian matching, LIN-PRED) are tested in
`nbs/08_evaluation.ipynb`; one property is repeated here over many random problems.
"""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

import torch_scae_nb.evaluate as E

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
KEYS = {'lin_match_acc', 'lin_match_acc_fit', 'lin_match_acc_transfer', 'lin_pred_acc', 'lin_pred_acc_train',
        'lin_match_acc_prior', 'lin_match_acc_fit_prior', 'lin_pred_acc_prior', 'n_train', 'n_eval',
        'checkpoint_step', 'checkpoint', 'dataset', 'split', 'figures', 'seconds', 'pixels'}


def run(*args, timeout=300):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A `tiny` SCAE trained for 3 steps on the bundled digits by the real `scae_train`"
    out = tmp_path_factory.mktemp('eval')/'run'
    r = run('-m', 'torch_scae_nb.train', '--config', 'tiny', '--dataset', 'digits', '--steps', 3, '--batch_size', 8,
            '--log_every', 1, '--out', out, '--no_progress')
    assert r.returncode == 0, r.stderr
    return out


def test_scae_eval_json_end_to_end(tiny_run):
    r = run('-m', 'torch_scae_nb.evaluate', '--checkpoint', tiny_run, '--json', '--n_max', 60, '--no_progress')
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)                                   # stdout is one JSON object, nothing else
    assert KEYS <= set(rep), KEYS - set(rep)
    assert rep['checkpoint_step'] == 3 and rep['dataset'] == 'digits' and rep['split'] == 'test'
    assert rep['n_train'] == rep['n_eval'] == 60
    for k in KEYS - {'n_train', 'n_eval', 'checkpoint_step', 'checkpoint', 'dataset', 'split', 'figures', 'seconds', 'pixels'}:
        assert 0 <= rep[k] <= 1, (k, rep[k])
    assert (rep['pixels']['n_train'], rep['pixels']['n_eval']) == (60, 60)   # the raw-pixel baseline, same images
    assert sorted(rep['figures']) == sorted(E.EVAL_FIGURES)
    for name, file in E.EVAL_FIGURES.items():
        path = tiny_run/file
        assert rep['figures'][name] == str(path)
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and path.stat().st_size > 3000, path


def main(capsys, *args):
    "`scae_eval ARGS` in this process: (exit code, stdout, stderr)"
    code = E.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_scae_eval_text_report_and_no_figures(tiny_run, tmp_path, capsys):
    ckpt = tmp_path/'checkpoint.pt'                              # a checkpoint file given directly, in another folder
    ckpt.write_bytes((tiny_run/'checkpoint.pt').read_bytes())
    code, out, err = main(capsys, '--checkpoint', ckpt, '--n_max', 30, '--no_figures', '--no_progress', '--no_noise')
    assert code == 0, err
    assert 'LIN-MATCH (posterior presences):' in out and 'LIN-PRED  (posterior presences):' in out
    assert 'raw pixels of the same images (the bar to clear)' in out
    assert '30 images, 10 clusters, presence noise off)' in out
    assert not list(tmp_path.glob('eval_*.png'))


def test_missing_checkpoint_in_a_subprocess():
    "The real entry point: exit status 2, one line, no traceback"
    r = run('-m', 'torch_scae_nb.evaluate', '--checkpoint', '/nonexistent/run')
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr.strip().splitlines() == ['scae_eval: error: no checkpoint in /nonexistent/run '
                                             '(expected /nonexistent/run/checkpoint.pt)'], r.stderr


@pytest.mark.parametrize('args,message', [
    ([], '--checkpoint DIR is required'),
    (['--checkpoint', '/nonexistent/run', '--n_max', 'x'], "invalid int value: 'x'"),
    (['--checkpoint', '/nonexistent/run', '--bogus'], 'unrecognized arguments'),
    (['--dataset', 'mnist', '--data_dir', '/nonexistent/data'], 'MNIST not found'),
    (['--dataset', 'nope'], "unknown dataset 'nope'"),
    (['--device', 'tpu9'], 'unknown device'),
    (['--split', 'valid'], '--split must be'),
    (['--n_max', 5], '--n_max must be >= 10'),
], ids=lambda a: ' '.join(map(str, a)) if isinstance(a, list) else None)
def test_errors_are_one_line(tiny_run, capsys, args, message):
    if args and args[0] != '--checkpoint': args = ['--checkpoint', tiny_run, *args]
    code, out, err = main(capsys, *args)
    assert code == 2 and out == ''
    assert len(err.strip().splitlines()) == 1 and err.startswith('scae_eval: error: ') and message in err, err


def test_hungarian_mapping_is_always_a_permutation():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, N = int(rng.integers(2, 12)), int(rng.integers(1, 300))
        m = E.match_clusters(rng.integers(0, n, N), rng.integers(0, n, N), n, n)
        assert sorted(m.mapping) == list(range(n))
        assert m.n_correct >= m.counts.max()              # at least as good as naming only the biggest cell
