#!/usr/bin/env bash
# Tag every refactoring stage: stage-N-name -> the newest commit whose message
# carries the trailer "Refactor-Stage: N-name".
#
#   scripts/stage-tags.sh [--dry-run] [REVISION]     (REVISION defaults to HEAD)
#
# Idempotent: a tag already on the right commit is left alone ("unchanged"),
# one on another commit is moved ("moved"), a missing one is created
# ("created"). Tags are annotated, message "Refactor stage N-name". Nothing is
# pushed; run `git push --force origin 'refs/tags/stage-*'` to publish moves.
set -euo pipefail

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
}

dry_run=0
revision=HEAD
while (($#)); do
    case "$1" in
        -n | --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "stage-tags: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) revision=$1 ;;
    esac
    shift
done

if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "stage-tags: not inside a git repository" >&2
    exit 1
fi
if ! git rev-parse --verify --quiet "${revision}^{commit}" >/dev/null; then
    echo "stage-tags: no commit at ${revision} (empty repository?); nothing to tag"
    exit 0
fi

# Annotated tags need a tagger; CI checkouts often have no identity configured.
if ! git var GIT_COMMITTER_IDENT >/dev/null 2>&1; then
    export GIT_COMMITTER_NAME="stage-tags" GIT_COMMITTER_EMAIL="stage-tags@localhost"
fi

value_pattern='^[0-9]+-[a-z0-9-]+$'
# One record per commit, newest first: hash, then the trailer values, all
# separated by the unit separator (values never contain it).
sep=$'\x1f'
format="%H${sep}%(trailers:key=Refactor-Stage,valueonly,unfold,separator=%x1f)"

declare -A commit_of=()   # stage value -> newest commit carrying it
declare -A name_of_number=()
stages=()                 # stage values in the order first seen (newest first)
warnings=0

while IFS= read -r line; do
    IFS="$sep" read -r -a fields <<<"$line"
    commit=${fields[0]}
    for value in "${fields[@]:1}"; do
        value=${value#"${value%%[![:space:]]*}"}
        value=${value%"${value##*[![:space:]]}"}
        [[ -n $value ]] || continue
        if [[ ! $value =~ $value_pattern ]]; then
            echo "warning: ${commit:0:12}: skipping malformed trailer 'Refactor-Stage: ${value}' (want N-name, e.g. 2-comments-extracted)" >&2
            warnings=$((warnings + 1))
            continue
        fi
        [[ -z ${commit_of[$value]+set} ]] || continue
        commit_of[$value]=$commit
        stages+=("$value")
        number=${value%%-*}
        if [[ -n ${name_of_number[$number]+set} && ${name_of_number[$number]} != "$value" ]]; then
            echo "warning: stage ${number} has two names: ${name_of_number[$number]} and ${value}; tagging both" >&2
            warnings=$((warnings + 1))
        fi
        name_of_number[$number]=$value
    done
done < <(git log --format="$format" "$revision")

if ((${#stages[@]} == 0)); then
    echo "stage-tags: no commit reachable from ${revision} has a 'Refactor-Stage: N-name' trailer; nothing to tag"
    exit 0
fi

# Oldest stage first reads naturally; sort by stage number.
mapfile -t ordered < <(printf '%s\n' "${stages[@]}" | sort -t- -k1,1n -k2)

created=0 moved=0 unchanged=0
for value in "${ordered[@]}"; do
    tag="stage-${value}"
    commit=${commit_of[$value]}
    short=$(git rev-parse --short "$commit")
    current=$(git rev-parse --verify --quiet "refs/tags/${tag}^{commit}" || true)
    if [[ -z $current ]]; then
        action=created created=$((created + 1))
    elif [[ $current != "$commit" ]]; then
        action=moved moved=$((moved + 1))
    elif [[ $(git cat-file -t "refs/tags/${tag}") != tag ]]; then
        # Right commit but a lightweight tag: make it annotated like the rest.
        action=moved moved=$((moved + 1))
    else
        printf '%-9s %-40s %s\n' unchanged "$tag" "$short"
        unchanged=$((unchanged + 1))
        continue
    fi
    if ((!dry_run)); then
        git tag --annotate --force --message "Refactor stage ${value}" "$tag" "$commit" >/dev/null
    fi
    if [[ $action == moved ]]; then
        printf '%-9s %-40s %s (was %s)\n' moved "$tag" "$short" "$(git rev-parse --short "$current")"
    else
        printf '%-9s %-40s %s\n' created "$tag" "$short"
    fi
done

summary="${created} created, ${moved} moved, ${unchanged} unchanged"
((warnings == 0)) || summary+=", ${warnings} warning(s)"
((!dry_run)) || summary+=" (dry run: no tag written)"
echo "stage-tags: ${summary}"
