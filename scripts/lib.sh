# scripts/lib.sh - sourced by the scripts beside it: the usage error they all give, and the
# CMake options scripts/build takes (scripts/test checks them too, before anything runs).

# usage_error MESSAGE: "scripts/NAME: MESSAGE" and the pointer to its --help; exit 2.
usage_error() {
    echo "scripts/${0##*/}: $1" >&2
    echo "Try 'scripts/${0##*/} --help' for more information." >&2
    exit 2
}

# cmake_options ARG...: -h/--help prints the caller's usage and exits 0; each CMake option
# (-D, -U, -G, -C with their value, joined or not; -W...; --fresh) goes to CMAKE_ARGS as
# given; anything else is a usage error.
cmake_options() {
    CMAKE_ARGS=()
    while [ $# -gt 0 ]; do
        case $1 in
            -h | --help) usage; exit 0 ;;
            -D | -U | -G | -C)
                [ $# -ge 2 ] || usage_error "option '$1' needs a value"
                CMAKE_ARGS+=("$1" "$2"); shift 2 ;;
            -D?* | -U?* | -G?* | -C?* | -W?* | --fresh) CMAKE_ARGS+=("$1"); shift ;;
            -*) usage_error "unknown option '$1'" ;;
            *) usage_error "unexpected argument '$1'" ;;
        esac
    done
}
