# Loads a Vagrantfile with a stand-in for Vagrant that records, per machine,
# its private networks and its provisioners, and prints them as JSON: what
# the machines would be, without a hypervisor or Vagrant itself.
#   ruby load-vagrantfile.rb PATH/Vagrantfile
require "json"

MACHINES = {}

# Answers every configuration call; only define, network and provision are kept.
class Recorder
  def initialize(name = nil)
    @name = name
  end

  def define(name, **_options)
    MACHINES[name.to_s] = { networks: [], provisioners: [] }
    yield Recorder.new(name.to_s)
  end

  def network(type, **options)
    MACHINES[@name][:networks] << options.merge(type: type) if @name
  end

  def provision(name, **options)
    MACHINES[@name][:provisioners] << options.merge(name: name) if @name
  end

  def method_missing(*_args, **_options)
    self
  end

  def respond_to_missing?(*_args)
    true
  end
end

module Vagrant
  def self.configure(_version)
    yield Recorder.new
  end
end

load ARGV.fetch(0)
puts JSON.generate(MACHINES)
