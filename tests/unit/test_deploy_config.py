"""`make deploy` starts from samconfig.toml: safe defaults committed, nothing account-specific.

The first deploy is guided because no stack name is committed (the Makefile checks for one); every
change set waits for confirmation; the stack gets only the capability its unnamed roles need.
"""

from __future__ import annotations

import re
import tomllib

from tests.support import REPO_ROOT, template_resources

SAMCONFIG = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
DEPLOY = SAMCONFIG["default"]["deploy"]["parameters"]


def test_the_first_deploy_is_guided() -> None:
    # Given the committed configuration and the Makefile's deploy target
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^deploy: build\n\t(.+)$", makefile, re.MULTILINE)
    # Then no stack name (nor region, account or parameter) is committed, and without one the
    # target runs `sam deploy --guided`
    assert recipe is not None
    assert "grep -q '^stack_name' samconfig.toml" in recipe[1] and "--guided" in recipe[1]
    committed = {key for section in SAMCONFIG["default"].values() for key in section["parameters"]}
    assert not committed & {"stack_name", "region", "profile", "parameter_overrides", "s3_bucket"}


def test_every_change_set_waits_for_confirmation() -> None:
    assert DEPLOY["confirm_changeset"] is True
    assert DEPLOY["fail_on_empty_changeset"] is False


def test_the_stack_gets_only_the_iam_capability_its_unnamed_roles_need() -> None:
    # Given the template's IAM roles: none is named, so CAPABILITY_NAMED_IAM is not needed
    roles = [r for r in template_resources().values() if r["Type"] == "AWS::IAM::Role"]
    assert all("RoleName" not in role.get("Properties", {}) for role in roles)
    # Then the deploy grants CAPABILITY_IAM and nothing else
    assert DEPLOY["capabilities"] == "CAPABILITY_IAM"
