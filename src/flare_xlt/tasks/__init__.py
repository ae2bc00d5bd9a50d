"""Tasks and their data: examples, task specs, loaders, splits and prompts.

* :func:`load_task` / :func:`load_split`: a built-in task (``nusax_senti``,
  ``xnli``, ``tydiqa``, ``xquad``) in one language and split, from a local data
  directory or the Hugging Face Hub.
* :func:`load_parallel_file`: a user's own (English, target) data file.
* :func:`load_unlabeled_file`: a user's unlabeled file, the input of ``flare predict``.
"""

from flare_xlt.tasks.examples import ClassificationExample, Example, QAExample
from flare_xlt.tasks.load import load_split, load_task
from flare_xlt.tasks.parallel_file import load_parallel_file
from flare_xlt.tasks.prompts import PromptTemplate, generic_template, get_template
from flare_xlt.tasks.report import DataFileError, LoadedSplit, LoadReport, RowError
from flare_xlt.tasks.spec import TASKS, TaskSpec, get_task_spec
from flare_xlt.tasks.splits import SPLITS
from flare_xlt.tasks.unlabeled_file import UnlabeledFile, load_unlabeled_file

__all__ = [
    "SPLITS",
    "TASKS",
    "ClassificationExample",
    "DataFileError",
    "Example",
    "LoadReport",
    "LoadedSplit",
    "PromptTemplate",
    "QAExample",
    "RowError",
    "TaskSpec",
    "UnlabeledFile",
    "generic_template",
    "get_task_spec",
    "get_template",
    "load_parallel_file",
    "load_split",
    "load_task",
    "load_unlabeled_file",
]
