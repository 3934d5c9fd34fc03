"""Bad data and odd inputs end in one line, not a traceback, and evaluation reads the data the way training did.

Tiny image folders are written with PIL into temporary directories (some files truncated or not images at all); the
`tiny` config trains for two steps where a checkpoint is needed. `scae_train` and `scae_eval` run in this process
through their `main` functions (exit code, stdout, stderr).
"""
import contextlib, io, json, shutil, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import torch_scae_nb.evaluate as E
import torch_scae_nb.train as T
from torch_scae_nb.data import DataError, DataWarning, first_line, make_dataset, make_fake_mnist, make_loader
from torch_scae_nb.factory import make_model




def run(tool, *args):
    "`scae_train` or `scae_eval` with ARGS in this process: (exit code, stdout, stderr)"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = tool.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def write_folder(root, n_train=5, n_test=3, test=True):
    "An ImageFolder of RGB files: class `disc` as PNGs, class `bar` as JPEGs, differently sized"
    root = Path(root)
    for split, n in (('train', n_train), ('test', n_test)) if test else (('train', n_train),):
        for c, (cls, ext, hw) in enumerate((('disc', 'png', (24, 18)), ('bar', 'jpg', (30, 12)))):
            (root/split/cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.random.default_rng(100 * c + i).integers(0, 256, (*hw, 3), dtype=np.uint8)
                Image.fromarray(a).save(root/split/cls/f'{i}.{ext}')
    return root


def truncate(path):
    "Cut a file in half, as an interrupted copy would"
    data = Path(path).read_bytes(); Path(path).write_bytes(data[:len(data) // 2])


def one_line(err, prefix):
    "The single line of stderr, which starts with `prefix`"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return lines[0]


def train_args(out, dataset='folder', data_dir=None, steps=2):
    return ['--config', 'tiny', '--dataset', dataset, *(['--data_dir', data_dir] if data_dir else []), '--steps', steps,
            '--batch_size', 4, '--diagnose_every', 0, '--no_progress', '--out', out]


@pytest.fixture(scope='module')
def folder_run(tmp_path_factory):
    "(image folder, run folder): the grey `tiny` model trained for 2 steps on a folder of colour images"
    base = tmp_path_factory.mktemp('robust')
    pics, out = write_folder(base/'pics'), base/'run'
    code, _, err = run(T, *train_args(out, data_dir=pics))
    assert code == 0, err
    return pics, out


@pytest.fixture(scope='module')
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('robust_digits')/'run'
    code, _, err = run(T, *train_args(out, dataset='digits', steps=1))
    assert code == 0, err
    return out


# --- case 2: evaluation reads the data the way training did ----------------------------------------------------

def test_eval_of_a_grey_model_trained_on_a_colour_folder(folder_run):
    pics, out = folder_run
    assert make_dataset('folder', data_dir=pics).image_shape == (3, 40, 40)      # the files are colour
    code, stdout, err = run(E, '--checkpoint', out, '--json', '--no_figures', '--no_progress')
    assert code == 0, err
    r = json.loads(stdout)
    assert (r['dataset'], r['split'], r['n_train'], r['n_eval']) == ('folder', 'test', 10, 6)
    assert r['held_out'] is True and r['n_clusters'] == 2                       # one cluster per class of the folder
    assert all(0 <= r[k] <= 1 for k in ('lin_match_acc', 'lin_pred_acc', 'lin_match_acc_fit'))


def test_n_max_takes_images_of_every_class(folder_run):
    "A folder is sorted by class; the first images alone would be one class and LIN-PRED could not be fit"
    pics, out = folder_run
    code, stdout, err = run(E, '--checkpoint', out, '--json', '--n_max', 2, '--no_figures', '--no_progress')
    assert code == 0, err
    assert json.loads(stdout)['n_train'] == 2


# --- case 4: unreadable images ---------------------------------------------------------------------------------

def test_truncated_image_met_while_evaluating_is_named(folder_run, tmp_path):
    pics, out = folder_run
    copy = Path(shutil.copytree(pics, tmp_path/'pics'))
    bad = copy/'test'/'bar'/'1.jpg'
    truncate(bad)
    with pytest.raises(OSError) as why:               # what PIL says about the file (JPEG: 'Truncated File Read' or so)
        with Image.open(bad) as im: im.convert('L')
    code, stdout, err = run(E, '--checkpoint', out, '--data_dir', copy, '--no_figures', '--no_progress')
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_eval: error: ') == (f'scae_eval: error: cannot read image {bad} '
                                                  f'(OSError: {first_line(why.value)}): fix or remove the file')


def test_truncated_png_in_a_loader_worker(tmp_path):
    "Met mid-training in a DataLoader worker: the same one line, recovered by `first_line`"
    pics = write_folder(tmp_path/'pics', test=False)
    bad = pics/'train'/'disc'/'3.png'
    truncate(bad)
    ds = make_dataset('folder', data_dir=pics)                    # builds: its first image is fine
    msg = f'cannot read image {bad} (OSError: image file is truncated): fix or remove the file'
    with pytest.raises(DataError) as e: ds[8]                     # bar/0-4.jpg, then disc/0-4.png
    assert str(e.value) == msg
    with pytest.raises(DataError) as e: list(make_loader(ds, batch_size=10, shuffle=False, num_workers=1))
    assert first_line(e.value) == msg


def test_unreadable_first_image_one_line_from_both_tools(folder_run, tmp_path):
    pics, out = folder_run
    copy = Path(shutil.copytree(pics, tmp_path/'pics'))
    bad = copy/'train'/'bar'/'0.jpg'                     # image 0 (classes sort by name): read when the dataset is built
    bad.write_bytes(b'this is not a JPEG')
    line = (f"--dataset folder: cannot read image {bad} (UnidentifiedImageError: cannot identify image file "
            f"'{bad}'): fix or remove the file")
    code, stdout, err = run(T, *train_args(tmp_path/'run', data_dir=copy))
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_train: error: ') == f'scae_train: error: {line}'
    assert not (tmp_path/'run').exists()                 # nothing written
    code, stdout, err = run(E, '--checkpoint', out, '--data_dir', copy, '--no_figures', '--no_progress')
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_eval: error: ') == f'scae_eval: error: {line}'


# --- case 4: fewer images than clusters ------------------------------------------------------------------------

def test_n_max_below_the_number_of_clusters(folder_run):
    pics, out = folder_run
    code, stdout, err = run(E, '--checkpoint', out, '--n_max', 1, '--no_figures', '--no_progress')
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_eval: error: ') == ('scae_eval: error: --n_max must be >= 2 (LIN-MATCH fits 2 k-means '
                                                  'clusters, one per class of folder), got 1')


def test_a_folder_with_one_class(folder_run, tmp_path):
    pics, out = folder_run
    shutil.copytree(pics/'train'/'disc', tmp_path/'one'/'disc')
    code, stdout, err = run(E, '--checkpoint', out, '--data_dir', tmp_path/'one', '--no_figures', '--no_progress')
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_eval: error: ') == ('scae_eval: error: --dataset folder has one class (disc): LIN-MATCH '
                                                  'and LIN-PRED need at least 2')


def test_dataset_with_fewer_training_images_than_clusters(digits_run, tmp_path):
    make_fake_mnist(tmp_path/'mn', n_train=6, n_test=4)
    code, stdout, err = run(E, '--checkpoint', digits_run, '--dataset', 'mnist', '--data_dir', tmp_path/'mn',
                            '--no_figures', '--no_progress')
    assert (code, stdout) == (2, '')
    assert one_line(err, 'scae_eval: error: ') == ('scae_eval: error: --dataset mnist: its train split has 6 images, '
                                                  'but LIN-MATCH fits 10 k-means clusters (one per class) and needs '
                                                  'at least 10: add training images')


def test_a_test_split_too_small_for_tsne_skips_that_figure(folder_run, tmp_path):
    pics, out = folder_run
    small = write_folder(tmp_path/'small', n_train=3, n_test=2)      # 4 test images: TSNE needs 5
    ckpt = tmp_path/'run'/'checkpoint.pt'
    ckpt.parent.mkdir(); ckpt.write_bytes((out/'checkpoint.pt').read_bytes())
    code, stdout, err = run(E, '--checkpoint', ckpt, '--data_dir', small, '--json', '--no_progress')
    assert code == 0, err
    assert one_line(err, 'scae_eval: warning: ') == 'scae_eval: warning: TSNE figure skipped: it needs at least 5 images, got 4'
    r = json.loads(stdout)
    assert sorted(r['figures']) == ['capsules', 'reconstructions', 'templates'] and r['n_eval'] == 4
    assert all(Path(p).is_file() for p in r['figures'].values()) and not (ckpt.parent/E.EVAL_FIGURES['tsne']).exists()


# --- case 4: batches the model cannot take as they are ---------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_model():
    torch.manual_seed(0)
    return make_model('tiny')


@pytest.fixture(scope='module')
def images():
    ds = make_dataset('digits', 'test')
    return torch.stack([ds[i][0] for i in range(3)])              # (3, 1, 40, 40)


def test_empty_batch_is_named(tiny_model, images):
    with pytest.raises(ValueError, match=r'empty batch \(0, 1, 40, 40\): pass at least one image'): tiny_model(images[:0])


def test_integer_images_say_how_to_convert(tiny_model, images):
    with pytest.raises(ValueError, match=r'got torch.uint8: convert them first, e.g. images.float\(\) / 255'):
        tiny_model((images * 255).to(torch.uint8))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_precisions_give_the_models_own_result(tiny_model, images, dtype):
    x = images.to(dtype)
    def recon(batch):
        torch.manual_seed(0)
        with torch.no_grad(): return tiny_model(batch).reconstruction.mode()
    ref = recon(x.float())                                   # the same values in float32
    got = recon(x)
    assert got.dtype == torch.float32 and torch.equal(got, ref)


def test_float64_images_under_autocast(tiny_model, images):
    with torch.autocast('cpu', dtype=torch.bfloat16):
        res = tiny_model(images.double())
        total, _ = tiny_model.loss(res, images.double())
    assert torch.isfinite(total)


# --- case 6: options and splits that are not what they seem ----------------------------------------------------

def test_data_dir_for_the_bundled_digits_is_said_to_be_ignored(digits_run, tmp_path):
    code, stdout, err = run(E, '--checkpoint', digits_run, '--data_dir', '/nonexistent/x', '--n_max', 20,
                            '--no_figures', '--no_progress')
    assert code == 0, err
    assert one_line(err, 'scae_eval: warning: ') == ("scae_eval: warning: data_dir='/nonexistent/x' is ignored for "
                                                    "dataset 'digits': the digits are bundled with scikit-learn "
                                                    "(drop --data_dir)")                  # once for the two splits
    code, stdout, err = run(T, *train_args(tmp_path/'run', dataset='digits', data_dir='/nonexistent/x', steps=1))
    assert code == 0, err
    assert "scae_train: warning: data_dir='/nonexistent/x' is ignored for dataset 'digits'" in err
    code, stdout, err = run(E, '--checkpoint', tmp_path/'run', '--n_max', 20, '--no_figures', '--no_progress')
    assert (code, err) == (0, '')                   # the run recorded that data_dir; evaluating it, the user gave none


def test_folder_without_test_split_is_labelled_not_held_out(folder_run, tmp_path):
    pics, out = folder_run
    copy = Path(shutil.copytree(pics/'train', tmp_path/'pics'/'train'))
    code, stdout, err = run(E, '--checkpoint', out, '--data_dir', copy.parent, '--json', '--no_figures', '--no_progress')
    assert code == 0, err
    assert one_line(err, 'scae_eval: warning: ') == (
        f"scae_eval: warning: dataset 'folder': {copy.parent} has no test/ sub-folder, so its 'test' split is the "
        f"training images (scores on it are not held out); add {copy.parent/'test'} with one sub-folder per class")
    r = json.loads(stdout)
    assert r['held_out'] is False and r['split'] == 'test' and r['n_eval'] == r['n_train'] == 10
    code, stdout, err = run(E, '--checkpoint', out, '--data_dir', copy.parent, '--no_figures', '--no_progress')
    assert 'evaluated on test = the training images, NOT held out (10 images, 2 clusters)' in stdout


def test_train_only_folder_keeps_its_classes_for_the_test_split(tmp_path):
    "With train/ and no test/, the 'test' split is train/ itself, not the parent folder (whose one 'class' is train)"
    pics = write_folder(tmp_path/'pics', test=False)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ds = make_dataset('folder', 'test', data_dir=pics)
    assert [x.category for x in w] == [DataWarning]
    assert ds.classes == ['bar', 'disc'] and sorted(ds.targets.tolist()) == [0] * 5 + [1] * 5 and ds.held_out is False
