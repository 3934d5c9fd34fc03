"""Packaging for torch-scae-nb: everything is read from settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools
from packaging.requirements import Requirement

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

for key in 'version description keywords author author_email'.split():
    assert key in cfg, f'settings.ini is missing `{key}`'

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()


def split_reqs(key):
    "Space-separated requirements from settings.ini, validated with `packaging`."
    reqs = cfg.get(key, '').split()
    for r in reqs: Requirement(r)  # raises InvalidRequirement on a typo
    return reqs


lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']
console_scripts = cfg.get('console_scripts', '').split()  # space separated, as nbdev writes them

setuptools.setup(
    name=cfg['repo'],
    license=lic[0],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'License :: ' + lic[1],
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['torch_scae_nb', 'torch_scae_nb.*']),
    include_package_data=True,
    install_requires=split_reqs('requirements'),
    extras_require={'dev': split_reqs('dev_requirements')},
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
)
