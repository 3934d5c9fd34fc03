"""Config validation (issue 13): every key has a type and a range, and a bad value ends in one line that names the key,
the value and what is allowed — through `get_config` and the model builders, and through `scae_train --config FILE`
(exit status 2, before any data is loaded or any file is written)."""
import os, subprocess, sys

import pytest
import torch

import torch_scae_nb.constellation as constellation
import torch_scae_nb.data as data
import torch_scae_nb.train as T
from torch_scae_nb.configs import MODELS, PRESETS, check_config, get_config, model_defaults, model_schema
from torch_scae_nb.factory import make_model

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}




# --- the issue's values, through the API ---------------------------------------------------------------------------

ISSUE = [  # (override of the tiny preset, the exact error); each reached torch, or passed silently, before
    (dict(n_part_caps='8'), "config key 'n_part_caps' = '8' (str): must be an int >= 1 (write 8 without quotes)"),
    (dict(n_part_caps=8.), "config key 'n_part_caps' = 8.0 (float): must be an int >= 1 (write 8)"),
    (dict(n_part_caps=True), "config key 'n_part_caps' = True (bool): must be an int >= 1"),
    (dict(n_part_caps=-8), "config key 'n_part_caps' = -8 (int): must be an int >= 1"),
    (dict(n_obj_caps=-6), "config key 'n_obj_caps' = -6 (int): must be an int >= 1"),
    (dict(st_dim_out=-32), "config key 'st_dim_out' = -32 (int): must be an int >= 1"),
    (dict(template_size=[-5, 5]), "config key 'template_size' = [-5, 5] (list): must be a list of 2 ints >= 1"),
    (dict(n_part_caps=0), "config key 'n_part_caps' = 0 (int): must be an int >= 1"),
    (dict(n_obj_caps=0), "config key 'n_obj_caps' = 0 (int): must be an int >= 1"),
    (dict(n_classes=0), "config key 'n_classes' = 0 (int): must be an int >= 1"),
    (dict(colorize_templates='False'),
     "config key 'colorize_templates' = 'False' (str): must be True or False (write False without quotes)"),
    (dict(learning_rate='1e-3'), "config key 'learning_rate' = '1e-3' (str): must be a float > 0 (write 1e-3 without quotes)"),
    (dict(batch_size='16'), "config key 'batch_size' = '16' (str): must be an int >= 1 (write 16 without quotes)"),
]

@pytest.mark.parametrize('overrides,message', ISSUE, ids=[repr(o) for o, m in ISSUE])
def test_issue_values_refused_by_get_config(overrides, message):
    with pytest.raises(ValueError) as e: get_config('tiny', **overrides)
    assert str(e.value) == message


@pytest.mark.parametrize('overrides,message', ISSUE[:10], ids=[repr(o) for o, m in ISSUE[:10]])
def test_issue_values_refused_before_torch(overrides, message):
    "Building the model gives the configuration's message, not a torch error deep inside"
    with pytest.raises(ValueError) as e: make_model('tiny', **overrides)
    assert str(e.value) == message


OTHER = [  # further values of the same kinds, and keys that must agree
    (dict(learning_rate=float('nan')), "config key 'learning_rate' = nan (float): must be a float > 0 (finite: not inf or nan)"),
    (dict(caps_dropout_rate=1.), "config key 'caps_dropout_rate' = 1.0 (float): must be a float in [0, 1)"),
    (dict(obj_noise_type='None'), "config key 'obj_noise_type' = 'None' (str): choose one of ('uniform', None) "
                                  "(write None without quotes)"),
    (dict(cnn_strides=[2, 2, 1, 1.5]), "config key 'cnn_strides' = [2, 2, 1, 1.5] (list): must be a non-empty list of ints >= 1"),
    (dict(image_shape=[1, 8, 8]), "inconsistent config: image_shape = [1, 8, 8] is too small for the CNN encoder (kernel 3, "
                                  "strides [2, 2, 1, 1], no padding): layer 2 gets a 1x1 input; use larger images, fewer "
                                  "layers or smaller strides"),
    (dict(n_special_features=0), "inconsistent config: colorize_templates = True needs n_special_features >= 1 (the "
                                 "colours come from the special features): set colorize_templates = False or "
                                 "n_special_features >= 1"),
    (dict(lr_decay_rate=.96), "inconsistent config: lr_decay_rate = 0.96 but lr_decay_steps = None: set both (exponential "
                              "decay) or neither (a constant rate)"),
    (dict(outside_penalty=5., use_alpha_channel=False), "inconsistent config: outside_penalty = 5.0 needs use_alpha_channel "
                                                        "= True (it shifts the alpha logits): set outside_penalty = 0 or "
                                                        "use_alpha_channel = True"),
    (dict(model=['scae']), "unknown model ['scae']: choose one of ['constellation', 'scae'] or add yours with register_model"),
]

@pytest.mark.parametrize('overrides,message', OTHER, ids=[repr(o) for o, m in OTHER])
def test_other_bad_values_and_inconsistent_keys(overrides, message):
    with pytest.raises(ValueError) as e: get_config('tiny', **overrides)
    assert str(e.value) == message


def test_constellation_keys_are_checked():
    with pytest.raises(ValueError) as e: constellation.constellation_config(dict(n_votes=0))
    assert str(e.value) == "config key 'n_votes' = 0 (int): must be an int >= 1"
    with pytest.raises(ValueError) as e: get_config('constellation', prior_presence_type='max')
    assert str(e.value) == "config key 'prior_presence_type' = 'max' (str): choose one of ('indicator', 'prob')"
    with pytest.raises(ValueError) as e: get_config('constellation', n_obj_caps=3.)
    assert str(e.value) == "config key 'n_obj_caps' = 3.0 (float): must be an int >= 1 (write 3)"


def test_valid_values_still_accepted_in_plain_form():
    cfg = get_config('tiny', learning_rate=1, image_shape=(1, 40, 40), part_init_size=.3, obj_caps_params=None,
                     st_n_layers=0, n_special_features=0, colorize_templates=False, lr_decay_rate=.5, lr_decay_steps=10)
    assert cfg['learning_rate'] == 1. and type(cfg['learning_rate']) is float        # an int for a float: 1 -> 1.0
    assert cfg['image_shape'] == [1, 40, 40] and cfg['obj_caps_params'] is None
    assert check_config(cfg) == cfg and get_config(cfg) == cfg                       # checked configs go back through
    make_model(cfg)


# --- every key has a spec; every preset meets them -----------------------------------------------------------------

def test_every_key_of_every_model_has_a_spec():
    from torch_scae_nb.configs import check_value
    assert {'scae', 'constellation'} <= set(MODELS)
    for model in MODELS:
        defaults, schema = model_defaults(model), model_schema(model)
        assert set(defaults) <= set(schema), (model, set(defaults) - set(schema))
        for k, v in defaults.items(): assert check_value(k, v, schema[k]) == v, (model, k)


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_every_preset_validates(name):
    from torch_scae_nb.configs import check_value
    cfg = get_config(name)
    assert set(cfg) == set(model_defaults(cfg['model']))
    for k, v in cfg.items(): check_value(k, v, model_schema(cfg['model'])[k])
    assert check_config(cfg) == cfg


def test_a_key_without_a_spec_is_refused(monkeypatch):
    import standin
    standin.register('demo', torch.nn.Identity, dict(model='demo', n_widgets=3), monkeypatch=monkeypatch)
    with pytest.raises(ValueError, match=r"config key 'n_widgets' of model 'demo' has no spec"): get_config(dict(model='demo'))


# --- through the command line --------------------------------------------------------------------------------------

FILES = [  # (config file, what the one line on stderr must say after "scae_train: error: --config FILE: ")
    ('n_part_caps = 16\nlearning_rate = "1e-3"\n',
     "config key 'learning_rate' = '1e-3' (str): must be a float > 0 (write 1e-3 without quotes)"),
    ('batch_size = "16"\n', "config key 'batch_size' = '16' (str): must be an int >= 1 (write 16 without quotes)"),
    ("colorize_templates = 'False'\n",
     "config key 'colorize_templates' = 'False' (str): must be True or False (write False without quotes)"),
    ('n_part_caps = 8.0\n', "config key 'n_part_caps' = 8.0 (float): must be an int >= 1 (write 8)"),
    ('template_size = (-5, 5)\n', "config key 'template_size' = [-5, 5] (list): must be a list of 2 ints >= 1"),
    ('n_classes = 0\n', "config key 'n_classes' = 0 (int): must be an int >= 1"),
    ('n_part_caps = 16\nlearning_rate = 1e-3 +\n', "is not valid Python (line 2: invalid syntax)"),
    ('n_part_caps = 16\nbatch_size = BATCH\n', "raised NameError at line 2: name 'BATCH' is not defined"),
    ('scae = 5\n', "config group 'scae' = 5 (int): must be a dict of the old port's keys"),
]

@pytest.mark.parametrize('text,message', FILES, ids=[t.splitlines()[-1] for t, m in FILES])
def test_bad_config_file_through_the_cli(capsys, monkeypatch, tmp_path, text, message):
    loaded = []
    monkeypatch.setattr(data, 'make_dataset', lambda *a, **k: loaded.append(a))   # must never be reached
    f, out = tmp_path/'my_config.py', tmp_path/'run'
    f.write_text(text)
    code = T.main(['--config', str(f), '--steps', '1', '--out', str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f'scae_train: error: --config {f}: ') and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert loaded == [] and not out.exists()


def test_binary_file_as_config_through_the_cli(capsys, tmp_path):
    f = tmp_path/'checkpoint.pt'
    torch.save({'model': {}}, f)                               # a foreign file passed as --config
    code = T.main(['--config', str(f), '--steps', '1', '--out', str(tmp_path/'run')])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"config file '{f}' is not valid Python" in err, err


def test_console_script_exits_2_with_one_line(tmp_path):
    f = tmp_path/'my_config.py'
    f.write_text('learning_rate = "1e-3"\n')
    r = subprocess.run([sys.executable, '-m', 'torch_scae_nb.train', '--config', str(f), '--steps', '1',
                        '--out', str(tmp_path/'run')], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"scae_train: error: --config {f}: config key 'learning_rate' = '1e-3' (str): "
                                "must be a float > 0 (write 1e-3 without quotes)")


def test_valid_config_file_trains(capsys, tmp_path):
    "A config file of the tiny preset's values, with an int where a float belongs, trains a step"
    f = tmp_path/'my_config.py'
    f.write_text(''.join(f'{k} = {v!r}\n' for k, v in PRESETS['tiny'].items() if k != 'learning_rate') + 'learning_rate = 1\n')
    code = T.main(['--config', str(f), '--steps', '1', '--out', str(tmp_path/'run'), '--no_progress', '--diagnose_every', '0'])
    err = capsys.readouterr().err
    assert code == 0, err
    ckpt = T.read_checkpoint(tmp_path/'run'/T.CHECKPOINT)
    assert ckpt['config']['n_part_caps'] == 8 and type(ckpt['config']['learning_rate']) is float


def test_old_port_groups_in_a_constellation_config():
    "The old port's grouped keys describe an image model: a constellation config with them is one clear line"
    with pytest.raises(ValueError, match=r"config groups \['ocae_encoder_set_transformer'\] hold the old port's "
                                         r"image-model keys: a 'constellation' config takes flat keys"):
        get_config({'model': 'constellation', 'ocae_encoder_set_transformer': {'dim_in': 2}})
