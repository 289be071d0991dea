#include "mcp_bridge_component.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "esphome/components/network/util.h"
#include "esphome/core/application.h"
#include "esphome/core/hal.h"
#include "esphome/core/helpers.h"
#include "esphome/core/log.h"
#include "esphome/core/version.h"

#ifdef USE_ESP32
#include "esp_pthread.h"
#endif

namespace esphome::esp_mcp_bridge {

static const char *const TAG = "esp_mcp_bridge";

// How long a command waits for the main loop to pick it up before it is
// answered "timeout" (nothing applied). The main loop runs every few ms.
static const uint32_t MAIN_LOOP_WAIT_MS = 2000;

// The preferences behind the core's key/value store (the discovery mode).
struct KvBlob {
  uint16_t len;
  uint8_t data[30];
};
static const uint32_t KV_HASH_SEED = 0x4D435042;  // "MCPB"

static const char *const ACTION_NAMES[] = {"read", "write", "toggle", "trigger"};

// A string of the entity's, copied into a value (cut to the value's size).
static void set_string(mcp_value_t *v, const char *s, size_t len) {
  if (len > MCP_VALUE_STRING_MAX)
    len = MCP_VALUE_STRING_MAX;
  std::memcpy(v->string, s, len);
  v->string[len] = '\0';
}

static const char *c_str_of(const char *s) { return s; }
static const char *c_str_of(const std::string &s) { return s.c_str(); }
static const char *c_str_of(const StringRef &s) { return s.c_str(); }

void McpBridge::set_capacity(size_t sensors, size_t actuators) {
  this->entries_.reserve(sensors + actuators);
  this->cfg_.max_sensors = static_cast<uint16_t>(sensors ? sensors : 1);
  this->cfg_.max_actuators = static_cast<uint16_t>(actuators ? actuators : 1);
}

Entry &McpBridge::new_entry_(Kind kind, bool actuator, void *entity, const char *id, const char *type,
                             const char *name, const char *unit, const char *description) {
  this->entries_.emplace_back();
  Entry &e = this->entries_.back();
  e.parent = this;
  e.kind = kind;
  e.actuator = actuator;
  e.entity = entity;
  e.id = id;
  e.type = type;
  e.name = name;
  e.unit = unit;
  e.description = description;
  return e;
}

// The state callbacks only mark the entry: loop() reads and publishes the state.
#define MCP_SENSOR_ADDER(CLASS, KIND)                                                                            \
  void McpBridge::add_sensor(CLASS *s, const char *id, const char *type, const char *name, const char *unit,   \
                             const char *description, float min, float max, float accuracy,                    \
                             bool calibration_required, uint32_t calibration_interval_s, uint32_t interval_ms) { \
    Entry &e = this->new_entry_(KIND, false, s, id, type, name, unit, description);                             \
    e.base = s;                                                                                                  \
    e.min = min;                                                                                                 \
    e.max = max;                                                                                                 \
    e.accuracy = accuracy;                                                                                       \
    e.calibration_required = calibration_required;                                                               \
    e.calibration_interval_s = calibration_interval_s;                                                           \
    e.interval_ms = interval_ms;                                                                                 \
    size_t index = this->entries_.size() - 1;                                                                    \
    s->add_on_state_callback([this, index](auto &&...) { this->entries_[index].dirty = true; });                \
  }

#define MCP_WATCH(entity) \
  entity->add_on_state_callback([this, index](auto &&...) { this->entries_[index].dirty = true; });
#define MCP_NO_WATCH(entity) (void) index;
#define MCP_LIGHT_WATCH(entity) entity->add_remote_values_listener(new LightWatch(this, index));  // NOLINT

#ifdef USE_LIGHT
void LightWatch::on_light_remote_values_update() { this->bridge_->mark_dirty(this->index_); }
#endif

#define MCP_ACTUATOR_ADDER(CLASS, KIND, WATCH)                                                                    \
  void McpBridge::add_actuator(CLASS *a, const char *id, const char *type, const char *name, const char *unit,   \
                               const char *description, unsigned actions, float min, float max, float step,      \
                               uint32_t response_time_ms, bool requires_confirmation) {                          \
    Entry &e = this->new_entry_(KIND, true, a, id, type, name, unit, description);                              \
    e.base = a;                                                                                                  \
    e.actions = actions;                                                                                         \
    e.min = min;                                                                                                 \
    e.max = max;                                                                                                 \
    e.step = step;                                                                                               \
    e.response_time_ms = response_time_ms;                                                                       \
    e.requires_confirmation = requires_confirmation;                                                             \
    size_t index = this->entries_.size() - 1;                                                                    \
    WATCH(a)                                                                                                     \
  }

#ifdef USE_SENSOR
MCP_SENSOR_ADDER(sensor::Sensor, Kind::SENSOR)
#endif
#ifdef USE_BINARY_SENSOR
MCP_SENSOR_ADDER(binary_sensor::BinarySensor, Kind::BINARY_SENSOR)
#endif
#ifdef USE_TEXT_SENSOR
MCP_SENSOR_ADDER(text_sensor::TextSensor, Kind::TEXT_SENSOR)
#endif
#ifdef USE_SWITCH
MCP_ACTUATOR_ADDER(switch_::Switch, Kind::SWITCH, MCP_WATCH)
#endif
#ifdef USE_NUMBER
MCP_ACTUATOR_ADDER(number::Number, Kind::NUMBER, MCP_WATCH)
#endif
#ifdef USE_SELECT
MCP_ACTUATOR_ADDER(select::Select, Kind::SELECT, MCP_WATCH)
#endif
#ifdef USE_BUTTON
MCP_ACTUATOR_ADDER(button::Button, Kind::BUTTON, MCP_NO_WATCH)
#endif
#ifdef USE_TEXT
MCP_ACTUATOR_ADDER(text::Text, Kind::TEXT, MCP_WATCH)
#endif
#ifdef USE_LIGHT
MCP_ACTUATOR_ADDER(light::LightState, Kind::LIGHT, MCP_LIGHT_WATCH)
#endif

bool McpBridge::read_state_(const Entry &e, mcp_value_t *v) {
  std::memset(v, 0, sizeof *v);
  switch (e.kind) {
#ifdef USE_SENSOR
    case Kind::SENSOR: {
      auto *s = static_cast<sensor::Sensor *>(e.entity);
      v->type = MCP_VALUE_NUMBER;
      v->number = s->get_state();
      return s->has_state() && std::isfinite(v->number);
    }
#endif
#ifdef USE_BINARY_SENSOR
    case Kind::BINARY_SENSOR: {
      auto *s = static_cast<binary_sensor::BinarySensor *>(e.entity);
      v->type = MCP_VALUE_BOOLEAN;
      v->boolean = s->state;
      return s->has_state();
    }
#endif
#ifdef USE_TEXT_SENSOR
    case Kind::TEXT_SENSOR: {
      auto *s = static_cast<text_sensor::TextSensor *>(e.entity);
      v->type = MCP_VALUE_STRING;
      set_string(v, s->state.data(), s->state.size());
      return s->has_state();
    }
#endif
#ifdef USE_SWITCH
    case Kind::SWITCH: {
      auto *a = static_cast<switch_::Switch *>(e.entity);
      v->type = MCP_VALUE_BOOLEAN;
      v->boolean = a->state;
      return true;
    }
#endif
#ifdef USE_NUMBER
    case Kind::NUMBER: {
      auto *a = static_cast<number::Number *>(e.entity);
      v->type = MCP_VALUE_NUMBER;
      v->number = a->state;
      return a->has_state() && std::isfinite(v->number);
    }
#endif
#ifdef USE_SELECT
    case Kind::SELECT: {
      auto *a = static_cast<select::Select *>(e.entity);
      v->type = MCP_VALUE_ENUM;
      auto index = a->active_index();
      if (!a->has_state() || !index.has_value())
        return false;
      const char *option = a->option_at(*index);
      set_string(v, option, std::strlen(option));
      return true;
    }
#endif
#ifdef USE_TEXT
    case Kind::TEXT: {
      auto *a = static_cast<text::Text *>(e.entity);
      v->type = MCP_VALUE_STRING;
      set_string(v, a->state.data(), a->state.size());
      return a->has_state();
    }
#endif
#ifdef USE_LIGHT
    case Kind::LIGHT: {
      auto *a = static_cast<light::LightState *>(e.entity);
      v->type = MCP_VALUE_BOOLEAN;
      v->boolean = a->remote_values.is_on();  // the target state (a transition may be running)
      return true;
    }
#endif
    default:
      return false;
  }
}

bool McpBridge::register_entry_(Entry &e) {
  mcp_core_t *core = mcp_bridge_core();
  // The core copies names and units; a name taken from ESPHome is cut to what the core keeps.
  char name[49];
  const char *entity_name = e.name;
  if (entity_name == nullptr) {
    const StringRef &n = e.base->get_name();
    size_t len = n.size();
    if (len > sizeof name - 1) {
      len = sizeof name - 1;
      while (len > 0 && (static_cast<unsigned char>(n.c_str()[len]) & 0xC0) == 0x80)
        len--;  // not inside a UTF-8 sequence
    }
    std::memcpy(name, n.c_str(), len);
    name[len] = '\0';
    entity_name = len ? name : nullptr;
  }
  esp_err_t err;
  if (!e.actuator) {
    mcp_sensor_metadata_t md{};
    md.min_range = e.min;
    md.max_range = e.max;
    md.accuracy = e.accuracy;
    md.description = e.description;
    md.calibration_required = e.calibration_required;
    md.calibration_interval_s = e.calibration_interval_s;
    md.name = entity_name;
    md.interval_ms = e.interval_ms;
    const char *unit = e.unit;
    std::string entity_unit;
    switch (e.kind) {
#ifdef USE_SENSOR
      case Kind::SENSOR:
        md.value_type = "number";
        if (unit == nullptr) {
          entity_unit = c_str_of(static_cast<sensor::Sensor *>(e.entity)->get_unit_of_measurement_ref());
          if (!entity_unit.empty() && entity_unit.size() <= 15)
            unit = entity_unit.c_str();
        }
        break;
#endif
      case Kind::BINARY_SENSOR:
        md.value_type = "boolean";
        break;
      default:
        md.value_type = "string";
        break;
    }
    err = mcp_core_register_sensor(core, e.id, e.type, unit, &md, nullptr, nullptr);
  } else {
    mcp_actuator_metadata_t md{};
    md.description = e.description;
    md.min_value = e.min;
    md.max_value = e.max;
    md.step = e.step;
    md.response_time_ms = e.response_time_ms;
    md.requires_confirmation = e.requires_confirmation;
    md.name = entity_name;
    md.unit = e.unit;
    for (unsigned bit = 0; bit < 4; bit++) {
      if (e.actions & (1u << bit))
        e.actions_list.push_back(ACTION_NAMES[bit]);
    }
    e.actions_list.push_back(nullptr);
    md.supported_actions = e.actions_list.data();
    switch (e.kind) {
      case Kind::SWITCH:
      case Kind::LIGHT:
        md.value_type = "boolean";
        break;
      case Kind::NUMBER:
        md.value_type = "number";
        break;
#ifdef USE_SELECT
      case Kind::SELECT: {
        md.value_type = "enum";
        auto *a = static_cast<select::Select *>(e.entity);
        for (const auto &option : a->traits.get_options())
          e.options.push_back(c_str_of(option));
        e.options.push_back(nullptr);
        md.enum_options = e.options.data();
        break;
      }
#endif
      case Kind::BUTTON:
        md.value_type = "trigger";
        break;
      default:
        md.value_type = "string";
        break;
    }
    err = mcp_core_register_actuator(core, e.id, e.type, &md, &McpBridge::control_cb_, &e);
  }
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "'%s' was not registered: %s", e.id, mcp_bridge_err_to_name(err));
    return false;
  }
  e.out = new mcp_value_t();  // NOLINT(cppcoreguidelines-owning-memory)
  e.registered = true;
  e.dirty = true;  // publish the current state once it exists
  return true;
}

void McpBridge::setup() {
  this->value_ = new mcp_value_t();       // NOLINT(cppcoreguidelines-owning-memory)
  this->cmd_value_ = new mcp_value_t();   // NOLINT(cppcoreguidelines-owning-memory)
  this->pub_value_ = new mcp_value_t();   // NOLINT(cppcoreguidelines-owning-memory)

  this->device_name_ = c_str_of(App.get_friendly_name());
  if (this->device_name_.empty())
    this->device_name_ = c_str_of(App.get_name());
  this->cfg_.device_name = this->device_name_.c_str();
#ifdef ESPHOME_PROJECT_VERSION
  this->fw_version_ = ESPHOME_PROJECT_VERSION;
#else
  this->fw_version_ = std::string("esphome ") + ESPHOME_VERSION;
#endif
  this->cfg_.fw_version = this->fw_version_.c_str();
  if (this->cfg_.model == nullptr) {
    this->model_ = ESPHOME_BOARD;
    this->cfg_.model = this->model_.c_str();
  }

#ifdef USE_HOST
  // A host device can be pointed at another broker without a rebuild.
  const char *uri = std::getenv("MCP_BRIDGE_BROKER_URI");
  if (uri != nullptr && uri[0] != '\0')
    this->cfg_.mqtt_broker_uri = uri;
  const char *user = std::getenv("MCP_BRIDGE_USERNAME");
  const char *pass = std::getenv("MCP_BRIDGE_PASSWORD");
  if (user != nullptr && user[0] != '\0') {
    this->cfg_.mqtt_username = user;
    this->cfg_.mqtt_password = pass;
  }
#endif

  esp_err_t err = mcp_port_default_create(&this->cfg_, &this->port_);
  if (err == ESP_OK) {
    // ESPHome's preferences keep what the core persists (the discovery mode).
    this->port_.kv_load = &McpBridge::kv_load_;
    this->port_.kv_store = &McpBridge::kv_store_;
    err = mcp_bridge_init_with_port(&this->cfg_, &this->port_);
  }
  if (err != ESP_OK) {
    ESP_LOGE(TAG, "The bridge did not start: %s", mcp_bridge_err_to_name(err));
    this->mark_failed();
    return;
  }
  this->initialised_ = true;
  this->port_.lock(this->port_.ctx);
  for (auto &e : this->entries_) {
    if (!this->register_entry_(e))
      this->failed_registration_ = true;
  }
  this->port_.unlock(this->port_.ctx);
  if (!this->identify_triggers_.empty())
    mcp_bridge_register_event_handler(&McpBridge::event_cb_, this);
  if (this->failed_registration_)
    this->status_set_warning();
#ifdef USE_ESP32
  // The core's publish path needs more than the default pthread stack.
  esp_pthread_cfg_t pcfg = esp_pthread_get_default_config();
  pcfg.stack_size = 6144;
  pcfg.thread_name = "mcp_publish";
  esp_pthread_set_cfg(&pcfg);
#endif
  this->publisher_ = std::thread([this] { this->publisher_main_(); });
}

void McpBridge::loop() {
  if (!this->initialised_)
    return;
  this->serve_command_();
  if (this->identify_pending_.exchange(false)) {
    for (auto *trigger : this->identify_triggers_)
      trigger->trigger();
  }
  if (!this->started_ && network::is_connected()) {
    esp_err_t err = mcp_bridge_start();
    if (err != ESP_OK) {
      ESP_LOGE(TAG, "Connecting to the broker failed: %s", mcp_bridge_err_to_name(err));
      this->mark_failed();
      return;
    }
    this->started_ = true;
  }
  this->snapshot_dirty_();
}

// Main loop: snapshot what changed, for the publisher thread.
void McpBridge::snapshot_dirty_() {
  bool any = false;
  for (auto &e : this->entries_) {
    if (!e.dirty || !e.registered)
      continue;
    e.dirty = false;
    if (!this->read_state_(e, this->value_))
      continue;  // no state yet (or NaN): nothing is published
    std::lock_guard<std::mutex> lock(this->pub_mu_);
    std::memcpy(e.out, this->value_, sizeof *this->value_);
    e.pending = true;
    e.seq++;
    any = true;
  }
  if (any) {
    std::lock_guard<std::mutex> lock(this->pub_mu_);
    this->pub_wake_ = true;
    this->pub_cv_.notify_one();
  }
}

void McpBridge::publisher_main_() {
  std::unique_lock<std::mutex> lock(this->pub_mu_);
  for (;;) {
    this->pub_cv_.wait(lock, [this] { return this->pub_wake_ || this->pub_stop_; });
    if (this->pub_stop_)
      return;
    this->pub_wake_ = false;
    for (auto &e : this->entries_) {
      if (!e.pending)
        continue;
      e.pending = false;
      uint32_t seq = e.seq;
      std::memcpy(this->pub_value_, e.out, sizeof *e.out);
      lock.unlock();
      this->port_.lock(this->port_.ctx);
      lock.lock();
      // A command on this entity since the snapshot published a newer state.
      bool current = e.seq == seq;
      lock.unlock();
      if (current) {
        if (e.actuator) {
          mcp_bridge_publish_actuator_state(e.id, this->pub_value_);
        } else {
          mcp_bridge_publish_sensor_value(e.id, this->pub_value_, -1);
        }
      }
      this->port_.unlock(this->port_.ctx);
      lock.lock();
    }
  }
}

void McpBridge::serve_command_() {
  std::unique_lock<std::mutex> lock(this->cmd_mu_);
  if (this->cmd_state_ != CmdState::QUEUED)
    return;
  this->cmd_state_ = CmdState::RUNNING;
  Entry *e = this->cmd_entry_;
  mcp_action_t action = this->cmd_action_;
  lock.unlock();
  esp_err_t result = this->execute_(*e, action, this->cmd_value_);
  e->dirty = false;  // the core publishes the state it is answered with
  {
    std::lock_guard<std::mutex> pub_lock(this->pub_mu_);
    e->pending = false;
    e->seq++;  // an older snapshot on its way is dropped
  }
  lock.lock();
  this->cmd_result_ = result;
  this->cmd_state_ = CmdState::DONE;
  this->cmd_cv_.notify_all();
}

esp_err_t McpBridge::execute_(Entry &e, mcp_action_t action, mcp_value_t *v) {
  bool write = action == MCP_ACTION_WRITE || action == MCP_ACTION_TOGGLE;
  switch (e.kind) {
#ifdef USE_SWITCH
    case Kind::SWITCH: {
      auto *a = static_cast<switch_::Switch *>(e.entity);
      if (write)
        v->boolean ? a->turn_on() : a->turn_off();
      break;
    }
#endif
#ifdef USE_NUMBER
    case Kind::NUMBER:
      if (write) {
        auto call = static_cast<number::Number *>(e.entity)->make_call();
        call.set_value(static_cast<float>(v->number));
        call.perform();
      }
      break;
#endif
#ifdef USE_SELECT
    case Kind::SELECT:
      if (write) {
        auto call = static_cast<select::Select *>(e.entity)->make_call();
        call.set_option(v->string);
        call.perform();
      }
      break;
#endif
#ifdef USE_TEXT
    case Kind::TEXT:
      if (write) {
        auto call = static_cast<text::Text *>(e.entity)->make_call();
        call.set_value(v->string, std::strlen(v->string));
        call.perform();
      }
      break;
#endif
#ifdef USE_LIGHT
    case Kind::LIGHT:
      if (write) {
        auto call = static_cast<light::LightState *>(e.entity)->make_call();
        call.set_state(v->boolean);
        call.perform();
      }
      break;
#endif
#ifdef USE_BUTTON
    case Kind::BUTTON:
      static_cast<button::Button *>(e.entity)->press();
      return ESP_OK;
#endif
    default:
      return ESP_ERR_MCP_UNSUPPORTED_ACTION;
  }
  // Answer with what the entity holds now, which is what the call applied.
  if (!this->read_state_(e, v))
    return ESP_ERR_MCP_ACTUATOR;
  return ESP_OK;
}

// On the port's thread: events of the core; the main loop acts on them.
void McpBridge::event_cb_(void *args, mcp_event_base_t base, int32_t id, void *data) {
  (void) base;
  (void) data;
  if (id == MCP_EVENT_IDENTIFY)
    static_cast<McpBridge *>(args)->identify_pending_.store(true);
}

// On the port's thread, port lock held: hand the command to the main loop and wait
// for it (the main loop never waits for the port's lock, see the header).
esp_err_t McpBridge::control_cb_(const char *id, mcp_action_t action, mcp_value_t *value, void *user_data) {
  (void) id;
  auto *e = static_cast<Entry *>(user_data);
  McpBridge *self = e->parent;
  uint32_t wait_ms = MAIN_LOOP_WAIT_MS + e->response_time_ms;
  std::unique_lock<std::mutex> lock(self->cmd_mu_);
  if (self->cmd_state_ != CmdState::IDLE)
    return ESP_ERR_MCP_BUSY;
  std::memcpy(self->cmd_value_, value, sizeof *value);
  self->cmd_entry_ = e;
  self->cmd_action_ = action;
  self->cmd_state_ = CmdState::QUEUED;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  esp_err_t result = ESP_ERR_MCP_TIMEOUT;  // the main loop never took it: nothing applied
  if (self->cmd_cv_.wait_until(lock, deadline, [self] { return self->cmd_state_ != CmdState::QUEUED; })) {
    // taken: the entity call runs in the main loop; its outcome is the answer
    self->cmd_cv_.wait(lock, [self] { return self->cmd_state_ == CmdState::DONE; });
    result = self->cmd_result_;
    std::memcpy(value, self->cmd_value_, sizeof *value);
  }
  self->cmd_state_ = CmdState::IDLE;
  return result;
}

esp_err_t McpBridge::kv_load_(void *ctx, const char *key, void *buf, size_t *len) {
  (void) ctx;
  KvBlob blob{};
  auto pref = global_preferences->make_preference<KvBlob>(fnv1_hash(key) ^ KV_HASH_SEED, true);
  if (!pref.load(&blob) || blob.len > sizeof blob.data)
    return ESP_ERR_NOT_FOUND;
  if (blob.len > *len)
    return ESP_ERR_INVALID_SIZE;
  std::memcpy(buf, blob.data, blob.len);
  *len = blob.len;
  return ESP_OK;
}

esp_err_t McpBridge::kv_store_(void *ctx, const char *key, const void *data, size_t len) {
  (void) ctx;
  KvBlob blob{};
  if (len > sizeof blob.data)
    return ESP_ERR_INVALID_SIZE;
  blob.len = static_cast<uint16_t>(len);
  std::memcpy(blob.data, data, len);
  auto pref = global_preferences->make_preference<KvBlob>(fnv1_hash(key) ^ KV_HASH_SEED, true);
  if (!pref.save(&blob) || !global_preferences->sync())
    return ESP_FAIL;
  return ESP_OK;
}

void McpBridge::on_shutdown() {
  if (this->publisher_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(this->pub_mu_);
      this->pub_stop_ = true;
      this->pub_cv_.notify_one();
    }
    this->publisher_.join();
  }
  if (this->started_) {
    mcp_bridge_stop();  // "offline" before the clean disconnect
    this->started_ = false;
  }
}

void McpBridge::dump_config() {
  ESP_LOGCONFIG(TAG,
                "ESP32 MCP Bridge:\n"
                "  Broker: %s\n"
                "  Device id: %s\n"
                "  Base topic: %s\n"
                "  Discovery (fresh device): %s\n"
                "  Capabilities: %u",
                this->cfg_.mqtt_broker_uri, this->cfg_.device_id, this->cfg_.base_topic,
                this->cfg_.default_discovery_mode == MCP_DISCOVERY_INTEGRATION ? "integration" : "mqtt",
                static_cast<unsigned>(this->entries_.size()));
  for (const auto &e : this->entries_) {
    (void) e;  // unused when logging is compiled out
    ESP_LOGCONFIG(TAG, "  %s '%s'%s", e.actuator ? "Actuator" : "Sensor", e.id,
                  e.registered ? "" : " (NOT registered)");
  }
}

}  // namespace esphome::esp_mcp_bridge
