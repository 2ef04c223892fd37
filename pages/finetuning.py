"""Placeholder until this page is built; it says so plainly."""
from pages._shared import not_built_yet

not_built_yet("nav_finetuning", "issue_finetuning")
