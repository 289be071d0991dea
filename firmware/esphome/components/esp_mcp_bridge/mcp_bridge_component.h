#pragma once
// ESPHome glue of the ESP32 MCP Bridge: ties ESPHome entities to the portable
// core's sensors and actuators. The protocol is entirely the core's; this file
// only moves values between ESPHome and the core.
//
// Threads. ESPHome entities are used from ESPHome's main loop only, and the
// main loop never waits for the port's lock (after setup and start):
// - A command runs on the port's own thread (the bridge task on ESP32, the
//   network thread on a host) with the port's lock held. The actuator callback
//   hands it to the main loop, which makes the entity call in loop(); the
//   callback then answers with the entity's resulting state.
// - State changes seen in the main loop are snapshotted there and published by
//   the glue's publisher thread, which takes the port's lock. A snapshot taken
//   before a command on the same entity is dropped (sequence numbers), so the
//   state a command published is never overwritten by an older one.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "esphome/core/automation.h"
#include "esphome/core/component.h"
#include "esphome/core/defines.h"
#include "esphome/core/preferences.h"

#ifdef USE_SENSOR
#include "esphome/components/sensor/sensor.h"
#endif
#ifdef USE_BINARY_SENSOR
#include "esphome/components/binary_sensor/binary_sensor.h"
#endif
#ifdef USE_TEXT_SENSOR
#include "esphome/components/text_sensor/text_sensor.h"
#endif
#ifdef USE_SWITCH
#include "esphome/components/switch/switch.h"
#endif
#ifdef USE_NUMBER
#include "esphome/components/number/number.h"
#endif
#ifdef USE_SELECT
#include "esphome/components/select/select.h"
#endif
#ifdef USE_BUTTON
#include "esphome/components/button/button.h"
#endif
#ifdef USE_TEXT
#include "esphome/components/text/text.h"
#endif
#ifdef USE_LIGHT
#include "esphome/components/light/light_state.h"
#endif

#include "esp_mcp_bridge_core/mcp_core.h"
#include "esp_mcp_bridge_core/mcp_port.h"

namespace esphome::esp_mcp_bridge {

enum class Kind : uint8_t { SENSOR, BINARY_SENSOR, TEXT_SENSOR, SWITCH, NUMBER, SELECT, BUTTON, TEXT, LIGHT };

class McpBridge;

#ifdef USE_LIGHT
// A light tells its listeners about new remote values (its target state).
class LightWatch : public light::LightRemoteValuesListener {
 public:
  LightWatch(McpBridge *bridge, size_t index) : bridge_(bridge), index_(index) {}
  void on_light_remote_values_update() override;

 protected:
  McpBridge *bridge_;
  size_t index_;
};
#endif

struct Entry {
  McpBridge *parent{nullptr};
  Kind kind{Kind::SENSOR};
  bool actuator{false};
  bool registered{false};
  bool dirty{false};     // main loop: a state change to snapshot
  bool pending{false};   // publisher: `out` holds a snapshot to publish (pub_mu_)
  uint32_t seq{0};       // bumped by every snapshot and every command (pub_mu_)
  mcp_value_t *out{nullptr};  // the snapshot (pub_mu_)
  void *entity{nullptr};      // the entity, as its own class (Kind says which)
  EntityBase *base{nullptr};  // the same entity as EntityBase (name)
  const char *id{nullptr};
  const char *type{nullptr};
  const char *name{nullptr};
  const char *unit{nullptr};
  const char *description{nullptr};
  float min{0}, max{0}, step{0}, accuracy{0};
  bool calibration_required{false}, requires_confirmation{false};
  uint32_t calibration_interval_s{0}, interval_ms{0}, response_time_ms{0};
  unsigned actions{0};
  std::vector<const char *> actions_list;  // NULL-terminated
  std::vector<const char *> options;       // select: NULL-terminated
};

class McpBridge : public Component {
 public:
  void setup() override;
  void loop() override;
  void dump_config() override;
  void on_shutdown() override;
  float get_setup_priority() const override { return setup_priority::AFTER_WIFI; }

  void set_broker_uri(const char *uri) { this->cfg_.mqtt_broker_uri = uri; }
  void set_username(const char *v) { this->cfg_.mqtt_username = v; }
  void set_password(const char *v) { this->cfg_.mqtt_password = v; }
  void set_tls(bool enable, bool skip_verify) {
    this->cfg_.tls_config.enable_tls = enable;
    this->cfg_.tls_config.skip_cert_verification = skip_verify;
  }
  void set_ca_certificate(const char *pem) { this->cfg_.tls_config.ca_cert_pem = pem; }
  void set_keepalive(uint32_t s) { this->cfg_.mqtt_keepalive_s = static_cast<uint16_t>(s); }
  void set_device_id(const char *v) { this->cfg_.device_id = v; }
  void set_base_topic(const char *v) { this->cfg_.base_topic = v; }
  void set_discovery_prefix(const char *v) { this->cfg_.discovery_prefix = v; }
  void set_discovery_integration(bool v) {
    this->cfg_.default_discovery_mode = v ? MCP_DISCOVERY_INTEGRATION : MCP_DISCOVERY_MQTT;
  }
  void set_qos(uint8_t sensor, uint8_t actuator, uint8_t status, uint8_t error) {
    this->cfg_.qos_config = {sensor, actuator, status, error};
  }
  void set_publish_interval(uint32_t ms) { this->cfg_.sensor_publish_interval_ms = ms; }
  void set_metrics_interval(uint32_t ms) { this->cfg_.metrics_interval_ms = ms; }
  void set_command_timeout(uint32_t ms) { this->cfg_.command_timeout_ms = ms; }
  void set_max_command_size(uint32_t n) { this->cfg_.max_command_size = n; }
  void set_device_info(const char *manufacturer, const char *model, const char *hw) {
    this->cfg_.manufacturer = manufacturer;
    this->cfg_.model = model;
    this->cfg_.hw_version = hw;
  }
  void set_capacity(size_t sensors, size_t actuators);
  void add_identify_trigger(Trigger<> *trigger) { this->identify_triggers_.push_back(trigger); }
  // Main loop: entry `index` changed (state callbacks and listeners).
  void mark_dirty(size_t index) { this->entries_[index].dirty = true; }

#ifdef USE_SENSOR
  void add_sensor(sensor::Sensor *s, const char *id, const char *type, const char *name, const char *unit,
                  const char *description, float min, float max, float accuracy, bool calibration_required,
                  uint32_t calibration_interval_s, uint32_t interval_ms);
#endif
#ifdef USE_BINARY_SENSOR
  void add_sensor(binary_sensor::BinarySensor *s, const char *id, const char *type, const char *name,
                  const char *unit, const char *description, float min, float max, float accuracy,
                  bool calibration_required, uint32_t calibration_interval_s, uint32_t interval_ms);
#endif
#ifdef USE_TEXT_SENSOR
  void add_sensor(text_sensor::TextSensor *s, const char *id, const char *type, const char *name,
                  const char *unit, const char *description, float min, float max, float accuracy,
                  bool calibration_required, uint32_t calibration_interval_s, uint32_t interval_ms);
#endif
#ifdef USE_SWITCH
  void add_actuator(switch_::Switch *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif
#ifdef USE_NUMBER
  void add_actuator(number::Number *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif
#ifdef USE_SELECT
  void add_actuator(select::Select *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif
#ifdef USE_BUTTON
  void add_actuator(button::Button *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif
#ifdef USE_LIGHT
  void add_actuator(light::LightState *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif
#ifdef USE_TEXT
  void add_actuator(text::Text *a, const char *id, const char *type, const char *name, const char *unit,
                    const char *description, unsigned actions, float min, float max, float step,
                    uint32_t response_time_ms, bool requires_confirmation);
#endif

 protected:
  // What a command asks the main loop to do, and its outcome.
  enum class CmdState : uint8_t { IDLE, QUEUED, RUNNING, DONE };

  Entry &new_entry_(Kind kind, bool actuator, void *entity, const char *id, const char *type, const char *name,
                    const char *unit, const char *description);
  void register_all_();
  bool register_entry_(Entry &e);
  void snapshot_dirty_();
  void publisher_main_();
  // Fill `out` with the entity's current state; false when it has none (no state yet, NaN).
  bool read_state_(const Entry &e, mcp_value_t *out);
  // Main loop: make the entity call of a command; the entity's resulting state in *v.
  esp_err_t execute_(Entry &e, mcp_action_t action, mcp_value_t *v);
  void serve_command_();

  static void event_cb_(void *args, mcp_event_base_t base, int32_t id, void *data);
  static esp_err_t control_cb_(const char *id, mcp_action_t action, mcp_value_t *value, void *user_data);
  static esp_err_t kv_load_(void *ctx, const char *key, void *buf, size_t *len);
  static esp_err_t kv_store_(void *ctx, const char *key, const void *data, size_t len);

  mcp_bridge_config_t cfg_{};
  std::string fw_version_;
  std::string device_name_;
  std::string model_;
  mcp_port_t port_{};
  bool initialised_{false};
  bool started_{false};
  bool failed_registration_{false};
  std::vector<Entry> entries_;
  std::vector<Trigger<> *> identify_triggers_;
  std::atomic<bool> identify_pending_{false};  // set on the port's thread, run in loop()
  mcp_value_t *value_{nullptr};  // main loop scratch (a value holds up to MCP_VALUE_STRING_MAX bytes)

  // Snapshots from the main loop to the publisher thread.
  std::mutex pub_mu_;
  std::condition_variable pub_cv_;
  bool pub_wake_{false};
  bool pub_stop_{false};
  std::thread publisher_;
  mcp_value_t *pub_value_{nullptr};  // publisher scratch

  // The command handed from the port's thread to the main loop.
  std::mutex cmd_mu_;
  std::condition_variable cmd_cv_;
  CmdState cmd_state_{CmdState::IDLE};
  Entry *cmd_entry_{nullptr};
  mcp_action_t cmd_action_{MCP_ACTION_READ};
  esp_err_t cmd_result_{ESP_OK};
  mcp_value_t *cmd_value_{nullptr};
};

// on_identify: the `identify` command, run in the main loop.
class IdentifyTrigger : public Trigger<> {
 public:
  explicit IdentifyTrigger(McpBridge *parent) { parent->add_identify_trigger(this); }
};

}  // namespace esphome::esp_mcp_bridge
