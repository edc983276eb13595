package main

import (
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func conn(host string) resource.PropertyValue {
	return resource.NewObjectProperty(resource.PropertyMap{
		"host":       resource.NewStringProperty(host),
		"port":       resource.NewNumberProperty(22),
		"privateKey": resource.MakeSecret(resource.NewStringProperty("KEY")),
	})
}

func baseCommand() resource.PropertyMap {
	return resource.PropertyMap{
		"connection": conn("10.0.0.1"),
		"create":     resource.NewStringProperty("echo hi"),
		"stdin":      resource.NewStringProperty("data"),
		"triggers":   resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("a")}),
	}
}

func unknown() resource.PropertyValue { return resource.MakeComputed(resource.NewStringProperty("")) }

func TestDiffCommand(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(m resource.PropertyMap)
		changes  pulumirpc.DiffResponse_DiffChanges
		diffs    []string
		replaces []string
	}{
		{"no change", func(resource.PropertyMap) {}, pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"secret-ness alone is no change", func(m resource.PropertyMap) {
			m["stdin"] = resource.MakeSecret(m["stdin"])
		}, pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"stdin update", func(m resource.PropertyMap) {
			m["stdin"] = resource.NewStringProperty("other")
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"stdin"}, nil},
		{"triggers replace", func(m resource.PropertyMap) {
			m["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("b")})
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"}},
		{"host replace", func(m resource.PropertyMap) {
			m["connection"] = conn("10.0.0.2")
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"connection"}, []string{"connection"}},
		{"other connection field updates", func(m resource.PropertyMap) {
			c := m["connection"].ObjectValue().Copy()
			c["port"] = resource.NewNumberProperty(2222)
			m["connection"] = resource.NewObjectProperty(c)
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"connection"}, nil},
		{"unknown host replaces", func(m resource.PropertyMap) {
			c := m["connection"].ObjectValue().Copy()
			c["host"] = unknown()
			m["connection"] = resource.NewObjectProperty(c)
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"connection"}, []string{"connection"}},
		{"unknown create updates", func(m resource.PropertyMap) {
			m["create"] = unknown()
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"create"}, nil},
		{"added delete updates", func(m resource.PropertyMap) {
			m["delete"] = resource.NewStringProperty("rm -f x")
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"delete"}, nil},
		{"removed triggers replace", func(m resource.PropertyMap) {
			delete(m, "triggers")
		}, pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			olds := baseCommand()
			// Old state carries outputs; they must not count as input changes.
			olds["stdout"] = resource.NewStringProperty("hi")
			news := baseCommand()
			tt.mutate(news)
			resp := diffCommand(olds, news)
			if resp.Changes != tt.changes {
				t.Fatalf("changes = %v, want %v", resp.Changes, tt.changes)
			}
			if !reflect.DeepEqual(resp.Diffs, tt.diffs) {
				t.Errorf("diffs = %v, want %v", resp.Diffs, tt.diffs)
			}
			if !reflect.DeepEqual(resp.Replaces, tt.replaces) {
				t.Errorf("replaces = %v, want %v", resp.Replaces, tt.replaces)
			}
			if resp.DeleteBeforeReplace {
				t.Error("DeleteBeforeReplace must be false")
			}
			for _, k := range tt.diffs {
				d := resp.DetailedDiff[k]
				if d == nil || !d.InputDiff {
					t.Fatalf("missing detailed diff for %s", k)
				}
				replace := d.Kind == pulumirpc.PropertyDiff_UPDATE_REPLACE ||
					d.Kind == pulumirpc.PropertyDiff_ADD_REPLACE || d.Kind == pulumirpc.PropertyDiff_DELETE_REPLACE
				if replace != (len(tt.replaces) > 0) {
					t.Errorf("detailed diff kind %v for %s", d.Kind, k)
				}
			}
		})
	}
}

func TestDiffCopyToRemote(t *testing.T) {
	src := func(hash string) resource.PropertyValue {
		return resource.NewAssetProperty(&asset.Asset{Sig: asset.AssetSig, Path: "f.txt", Hash: hash})
	}
	base := func() resource.PropertyMap {
		return resource.PropertyMap{
			"connection": conn("10.0.0.1"),
			"source":     src("aaaa"),
			"remotePath": resource.NewStringProperty("/tmp/f"),
		}
	}
	tests := []struct {
		name     string
		mutate   func(m resource.PropertyMap)
		replaces []string
		changed  bool
	}{
		{"same hash", func(resource.PropertyMap) {}, nil, false},
		{"new hash replaces", func(m resource.PropertyMap) { m["source"] = src("bbbb") }, []string{"source"}, true},
		{"remotePath replaces", func(m resource.PropertyMap) {
			m["remotePath"] = resource.NewStringProperty("/tmp/g")
		}, []string{"remotePath"}, true},
		{"triggers replace", func(m resource.PropertyMap) {
			m["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewNumberProperty(1)})
		}, []string{"triggers"}, true},
		{"connection updates", func(m resource.PropertyMap) { m["connection"] = conn("10.0.0.9") }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			news := base()
			tt.mutate(news)
			resp := diffCopyToRemote(base(), news)
			if got := resp.Changes == pulumirpc.DiffResponse_DIFF_SOME; got != tt.changed {
				t.Fatalf("changed = %v, want %v", got, tt.changed)
			}
			if !reflect.DeepEqual(resp.Replaces, tt.replaces) {
				t.Errorf("replaces = %v, want %v", resp.Replaces, tt.replaces)
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	news := resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
			"host": resource.NewStringProperty("h"),
		})),
		"create": resource.NewStringProperty("true"),
	}
	inputs, failures := checkCommand(news)
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	c := inputs["connection"]
	if !c.IsSecret() {
		t.Fatal("connection lost its secret wrapper")
	}
	obj := c.SecretValue().Element.ObjectValue()
	if obj["port"].NumberValue() != 22 || obj["user"].StringValue() != "root" ||
		obj["dialErrorLimit"].NumberValue() != 10 || obj["perDialTimeout"].NumberValue() != 15 {
		t.Errorf("defaults not applied: %v", obj)
	}
	if !inputs["addPreviousOutputInEnv"].BoolValue() {
		t.Error("addPreviousOutputInEnv should default to true")
	}

	_, failures = checkCommand(resource.PropertyMap{"connection": conn("h")})
	if len(failures) != 1 || failures[0].Property != "create" {
		t.Errorf("missing create should fail, got %v", failures)
	}
	_, failures = checkCommand(resource.PropertyMap{"connection": conn("h"), "create": unknown()})
	if len(failures) != 0 {
		t.Errorf("unknown create must pass, got %v", failures)
	}
	_, failures = checkCommand(resource.PropertyMap{
		"connection": conn("h"), "create": resource.NewStringProperty("x"),
		"logging": resource.NewStringProperty("loud"),
	})
	if len(failures) != 1 || failures[0].Property != "logging" {
		t.Errorf("bad logging should fail, got %v", failures)
	}
}

func TestEngineAddressFromArgs(t *testing.T) {
	got := engineAddressFromArgs([]string{"-v=9", "--logtostderr", "-tracing", "127.0.0.1:1", "127.0.0.1:4242"})
	if got != "127.0.0.1:4242" {
		t.Errorf("got %q", got)
	}
}
