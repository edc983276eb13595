package main

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// unwrapSecret strips secret wrappers and known output wrappers from a value.
func unwrapSecret(v resource.PropertyValue) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput() && v.OutputValue().Known:
			v = v.OutputValue().Element
		default:
			return v
		}
	}
}

// isSecret reports whether a value is marked secret at its top level.
func isSecret(v resource.PropertyValue) bool {
	for {
		switch {
		case v.IsSecret():
			return true
		case v.IsOutput():
			if v.OutputValue().Secret {
				return true
			}
			if !v.OutputValue().Known {
				return false
			}
			v = v.OutputValue().Element
		default:
			return false
		}
	}
}

// isUnknown reports whether a value (after unwrapping secrets) is not yet known.
func isUnknown(v resource.PropertyValue) bool {
	v = unwrapSecret(v)
	return v.IsComputed() || (v.IsOutput() && !v.OutputValue().Known)
}

// optString reads an optional string property. ok is false when the key is
// missing or null; an error is returned for unknown or non-string values.
func optString(m resource.PropertyMap, key resource.PropertyKey) (s string, ok bool, err error) {
	v := unwrapSecret(m[key])
	switch {
	case v.IsNull():
		return "", false, nil
	case isUnknown(v):
		return "", false, fmt.Errorf("%s is not known yet", key)
	case v.IsString():
		return v.StringValue(), true, nil
	default:
		return "", false, fmt.Errorf("%s must be a string, got %s", key, v.TypeString())
	}
}

// optNumber reads an optional number property, returning def when unset.
func optNumber(m resource.PropertyMap, key resource.PropertyKey, def float64) (float64, error) {
	v := unwrapSecret(m[key])
	switch {
	case v.IsNull():
		return def, nil
	case isUnknown(v):
		return 0, fmt.Errorf("%s is not known yet", key)
	case v.IsNumber():
		return v.NumberValue(), nil
	default:
		return 0, fmt.Errorf("%s must be a number, got %s", key, v.TypeString())
	}
}

// optBool reads an optional bool property, returning def when unset.
func optBool(m resource.PropertyMap, key resource.PropertyKey, def bool) (bool, error) {
	v := unwrapSecret(m[key])
	switch {
	case v.IsNull():
		return def, nil
	case isUnknown(v):
		return false, fmt.Errorf("%s is not known yet", key)
	case v.IsBool():
		return v.BoolValue(), nil
	default:
		return false, fmt.Errorf("%s must be a boolean, got %s", key, v.TypeString())
	}
}

// setDefault sets m[key] = def when the key is missing or null.
func setDefault(m resource.PropertyMap, key resource.PropertyKey, def resource.PropertyValue) {
	if v, ok := m[key]; !ok || v.IsNull() {
		m[key] = def
	}
}

// applyConnectionDefaults fills the defaults of the connection object (port 22,
// user root, dialErrorLimit 10, perDialTimeout 15), preserving a secret wrapper
// around the whole object. Unknown connections are returned unchanged.
func applyConnectionDefaults(conn resource.PropertyValue) resource.PropertyValue {
	secret := conn.IsSecret()
	inner := unwrapSecret(conn)
	if !inner.IsObject() {
		return conn
	}
	obj := inner.ObjectValue().Copy()
	setDefault(obj, "port", resource.NewNumberProperty(22))
	setDefault(obj, "user", resource.NewStringProperty("root"))
	setDefault(obj, "dialErrorLimit", resource.NewNumberProperty(10))
	setDefault(obj, "perDialTimeout", resource.NewNumberProperty(15))
	out := resource.NewObjectProperty(obj)
	if secret {
		out = resource.MakeSecret(out)
	}
	return out
}

// checkConnection validates the connection input and returns check failures.
func checkConnection(m resource.PropertyMap) []string {
	v := m["connection"]
	if isUnknown(v) {
		return nil
	}
	inner := unwrapSecret(v)
	if inner.IsNull() {
		return []string{"connection is required"}
	}
	if !inner.IsObject() {
		return []string{"connection must be an object"}
	}
	obj := inner.ObjectValue()
	var reasons []string
	if h := unwrapSecret(obj["host"]); !isUnknown(h) && (!h.IsString() || h.StringValue() == "") {
		reasons = append(reasons, "connection.host must be a non-empty string")
	}
	for _, k := range []resource.PropertyKey{"proxy", "agentSocketPath"} {
		if present(obj[k]) {
			reasons = append(reasons, fmt.Sprintf(
				"connection.%s is not supported by this minimal command provider", k))
		}
	}
	return reasons
}
