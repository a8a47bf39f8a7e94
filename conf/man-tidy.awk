# Tidies the paragraph macros scdoc emits, which mandoc -T lint rightly
# reports: one right after a heading or another paragraph macro, or right
# before a heading, is dropped; one right before the end of an indented block
# (.RE) moves after it, where it still separates the entries. Run on scdoc's
# output at build time.
function heading(l) { return l ~ /^\.(SH|SS|P|PP|TH)( |$)/ }
{
    if ($0 == ".P" || $0 == ".PP") {
        if (!held && !heading(last)) held = 1
        next
    }
    if (held && $0 == ".RE") {
        print
        last = $0
        next
    }
    if (held) {
        if (!heading($0)) print ".P"
        held = 0
    }
    print
    last = $0
}
