# Delivery targets, included by the Makefile. CI calls these too.
.PHONY: workflows-lint secrets-scan secrets-baseline migrations-lint deploy-test image

SECRETS_EXCLUDE := (^|/)(uv\.lock|\.secrets\.baseline)$$
MIGRATIONS_BASE ?= origin/staging
IMAGE ?= nanobanana:dev

workflows-lint: install ## Lint the workflows offline: actionlint (with shellcheck), shellcheck, zizmor
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/actionlint
	@$(BIN)/shellcheck --severity=warning .ci/run deploy/process.sh
	@$(BIN)/zizmor --offline --quiet .github/workflows
	@echo "workflows: actionlint, shellcheck and zizmor are clean"

secrets-scan: install ## Fail on secrets in tracked files that .secrets.baseline does not list (no network)
	@git ls-files -z | xargs -0 $(BIN)/detect-secrets-hook --no-verify --baseline .secrets.baseline \
		--exclude-files '$(SECRETS_EXCLUDE)'
	@echo "secrets: no new secrets"

secrets-baseline: install ## Rewrite .secrets.baseline from the tracked files (review the diff!)
	@git ls-files -z | xargs -0 $(BIN)/detect-secrets scan --no-verify --exclude-files '$(SECRETS_EXCLUDE)' \
		> .secrets.baseline

define MIGRATION_LINT
import os, subprocess
import django
from django.conf import settings
settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_migration_linter"]
django.setup()
from django.apps import apps
from django.core.management import call_command
ours = [config.label for config in apps.get_app_configs() if config.name.startswith("nanobanana.")]
base = os.environ.get("MIGRATIONS_BASE", "")
known = bool(base) and subprocess.run(["git", "rev-parse", "--verify", "--quiet", base], capture_output=True).returncode == 0
print(f"migrations changed since {base}" if known else "no base ref: every migration")
# The linter runs `git diff --relative` from its project root, by default the
# settings module's folder (config/), where no migration lives: name the repo.
root = ["--project-root-path", str(settings.BASE_DIR)]
call_command("lintmigrations", *root, *(["--git-commit-id", base] if known else []), "--no-cache", "--include-apps", *ours)
endef
export MIGRATION_LINT

migrations-lint: install ## Backward-compatible migrations of our apps (django-migration-linter) since MIGRATIONS_BASE
	@MIGRATIONS_BASE="$(MIGRATIONS_BASE)" DJANGO_SETTINGS_MODULE=config.settings_test $(BIN)/python -c "$$MIGRATION_LINT"

deploy-test: install ## deployctl's tests: fakes of Railway, GitHub, Telegram, the fault matrix
	@$(BIN)/pytest tests/deployctl -q -p no:randomly

image: ## Build the container image (needs a Docker engine; CI has one)
	docker build -f deploy/Dockerfile -t $(IMAGE) --build-arg RELEASE=$$(git rev-parse HEAD) .
