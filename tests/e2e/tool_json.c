/*
 * Test helper for the tool's e2e scripts (so they need no python or jq):
 * reads JSON lines on stdin.
 *   tool_json check        every line is one JSON object; prints how many
 *   tool_json get KEY      prints KEY of every object, one per line
 *                          (strings bare, others as JSON; "-" when absent)
 * Exit 1 naming the line when a line does not parse.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

int main(int argc, char **argv)
{
    char line[65536];
    long n = 0;

    if (argc < 2 || (strcmp(argv[1], "check") && (strcmp(argv[1], "get") || argc != 3))) {
        fprintf(stderr, "usage: tool_json check | tool_json get KEY\n");
        return 2;
    }
    while (fgets(line, sizeof line, stdin)) {
        json_object *o = json_tokener_parse(line), *v;
        n++;
        if (!o || !json_object_is_type(o, json_type_object)) {
            fprintf(stderr, "line %ld is not a JSON object: %s", n, line);
            json_object_put(o);
            return 1;
        }
        if (argc == 3) {
            if (!json_object_object_get_ex(o, argv[2], &v))
                puts("-");
            else if (json_object_is_type(v, json_type_string))
                puts(json_object_get_string(v));
            else
                puts(json_object_to_json_string(v));
        }
        json_object_put(o);
    }
    if (argc == 2)
        printf("%ld\n", n);
    return 0;
}
