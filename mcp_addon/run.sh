#!/usr/bin/with-contenv bashio
# Start the MCP server over streamable HTTP. Home Assistant comes from SUPERVISOR_TOKEN
# (http://supervisor/core); the broker from the Supervisor's MQTT service unless mqtt_host is set.
set -e

export LOG_LEVEL="$(bashio::config 'log_level' | tr '[:lower:]' '[:upper:]')"
export BASE_TOPIC="$(bashio::config 'base_topic')"
export CONFIRM_TTL_S="$(bashio::config 'confirm_ttl')"
export MCP_HOST="0.0.0.0"
export MCP_PORT="${MCP_PORT:-8099}"

origins=""
for origin in $(bashio::config 'allowed_origins'); do
  origins="${origins:+${origins},}${origin}"
done
export ALLOWED_ORIGINS="${origins}"

# Who may do what (DOCS.md, "Access"): booleans as true/false, the per-actuator policy as one
# JSON object a line, exactly as bashio prints a list of objects.
export ALLOW_NON_ADMIN="$(bashio::config 'allow_non_admin' false)"
export READ_ONLY="$(bashio::config 'read_only' false)"
export CONFIRM_TOKEN_FALLBACK="$(bashio::config 'confirm_token_fallback' false)"
export ACTUATOR_POLICY="$(bashio::config 'actuator_policy' '')"
export CONFIRM_IN_HOME_ASSISTANT="$(bashio::config 'confirm_in_home_assistant' true)"
if bashio::config.has_value 'notify_service'; then
  export NOTIFY_SERVICE="$(bashio::config 'notify_service')"
fi

# OAuth (DOCS.md, "Logging in with OAuth") and HTTPS.
if bashio::config.has_value 'public_url'; then
  export PUBLIC_URL="$(bashio::config 'public_url')"
fi
if bashio::config.has_value 'ha_public_url'; then
  export HA_PUBLIC_URL="$(bashio::config 'ha_public_url')"
fi
if bashio::config.true 'ssl'; then
  export TLS_CERTFILE="/ssl/$(bashio::config 'certfile')"
  export TLS_KEYFILE="/ssl/$(bashio::config 'keyfile')"
fi

if bashio::config.has_value 'ha_auth_url'; then
  export HA_AUTH_URL="$(bashio::config 'ha_auth_url')"
fi

if bashio::config.has_value 'mqtt_host'; then
  export MQTT_HOST="$(bashio::config 'mqtt_host')"
  export MQTT_PORT="$(bashio::config 'mqtt_port' 1883)"
  if bashio::config.has_value 'mqtt_username'; then
    export MQTT_USERNAME="$(bashio::config 'mqtt_username')"
    export MQTT_PASSWORD="$(bashio::config 'mqtt_password')"
  fi
  if bashio::config.has_value 'mqtt_cafile'; then
    export MQTT_CAFILE="$(bashio::config 'mqtt_cafile')"
  fi
  if bashio::config.true 'mqtt_tls_insecure'; then
    export MQTT_TLS_INSECURE="true"
  fi
fi

bashio::log.info "Starting the MCP server on port ${MCP_PORT} (path /mcp)"
exec python3 -m esp_mcp_server --transport http
