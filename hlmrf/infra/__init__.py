"""Infrastructure shared by the hlmrf and vqa_adapters command-line tools: atomic publishing of
files (:mod:`.publish`), settings built from mappings (:mod:`.settings`), the exit-code table and
error runner (:mod:`.cli`) and the progress display (:mod:`.progress`). Nothing heavy is imported.
"""
from hlmrf.infra.cli import (EXIT_INPUT, EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_SOLVE, crop,
                             run_cli)
from hlmrf.infra.progress import Progress
from hlmrf.infra.publish import (MANIFEST, FileSet, atomic_write, check_output_dir,
                                 check_output_file)
from hlmrf.infra.settings import parse_bool, settings_from_mapping

__all__ = ["EXIT_OK", "EXIT_IO", "EXIT_INPUT", "EXIT_SOLVE", "EXIT_INTERRUPTED", "run_cli", "crop",
           "Progress", "FileSet", "atomic_write", "check_output_dir", "check_output_file",
           "MANIFEST", "settings_from_mapping", "parse_bool"]
