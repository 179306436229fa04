"""Command-line entry points of the VQA adapters (``vqa-train``, ``vqa-report``, ...)."""
import argparse


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, ``PROG: error: ... (see --help)``,
    exit status 2 (not argparse's usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
