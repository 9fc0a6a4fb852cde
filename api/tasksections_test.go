package api_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/domain"
)

// The checked-in openapi.yaml is what `go generate ./api` makes of the
// built-in task registry.
func TestOpenAPITaskSectionsAreGenerated(t *testing.T) {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := api.RenderTaskSections(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, doc) {
		t.Errorf("api/openapi.yaml is stale: run `go generate ./api`")
	}
	if !bytes.Equal(api.OpenAPIYAML(), doc) {
		t.Errorf("the served document differs from the checked-in one with only the built-in task types registered")
	}
	if _, err := api.RenderTaskSections(bytes.ReplaceAll(doc, []byte("# END generated: TaskOptions"), nil)); err == nil {
		t.Error("a document without an END marker was rendered")
	}
}

// A task type registered at run time is in the served document, with its
// options, bounds, default and admin-only flag, and leaves with it.
func TestServedDocumentFollowsTheRegistry(t *testing.T) {
	unregister, err := domain.RegisterTask(domain.TaskDef{
		Type: "doc_probe_task", Title: "Doc probe", Description: "a test task type",
		Options: map[string]domain.OptionSpec{
			"depth": {Kind: domain.OptionInt, Min: 1, Max: 9, Default: 3, Help: "how deep"},
			"wipe":  {Kind: domain.OptionBool, Default: false, AdminOnly: true, Help: "wipe first"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIYAML())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(doc.Components.Schemas["TaskType"].Value.Enum, any("doc_probe_task")) {
		t.Errorf("TaskType enum lacks the registered type: %v", doc.Components.Schemas["TaskType"].Value.Enum)
	}
	opts := doc.Components.Schemas["TaskOptions"].Value.Properties["doc_probe_task"]
	if opts == nil {
		t.Fatal("TaskOptions lacks the registered type")
	}
	depth := opts.Value.Properties["depth"].Value
	if depth.Min == nil || *depth.Min != 1 || *depth.Max != 9 || depth.Default != float64(3) {
		t.Errorf("depth: %+v", depth)
	}
	if wipe := opts.Value.Properties["wipe"].Value; wipe.Extensions["x-admin-only"] != true {
		t.Errorf("wipe: %+v", wipe.Extensions)
	}
	if !bytes.Contains(api.OpenAPIJSON(), []byte(`"doc_probe_task"`)) {
		t.Error("the JSON document lacks the registered type")
	}
	unregister()
	if bytes.Contains(api.OpenAPIYAML(), []byte("doc_probe_task")) {
		t.Error("the unregistered type is still served")
	}
}
